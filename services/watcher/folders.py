"""Which folders a library watch holds, and what to do with the ones that settled."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.watcher.observer import NativeObserver
from shared.paths import is_inside, validate_import_path, within

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from services.watcher.debounce import Debouncer
    from services.watcher.lease import Lease


@dataclass(frozen=True)
class LibraryConfig:
    """What the read model says about a library, as far as watching it goes."""

    id: uuid.UUID
    import_paths: tuple[str, ...]
    exclusion_patterns: tuple[str, ...]
    external_path: str | None


@dataclass(frozen=True)
class Root:
    """An import path being watched: its real path, and the path as the library spells it."""

    real: str
    import_path: str

    def holds(self, directory: str) -> bool:
        return within(self.real, directory)


def watchable_roots(config: LibraryConfig) -> tuple[Root, ...]:
    """The import paths to watch: usable (the scanner's own check), inside the owner's
    external path, each watched once (a folder inside another import path is part of it)."""
    if not config.external_path:
        return ()
    fence = os.path.realpath(config.external_path)
    found: dict[str, Root] = {}
    for path in config.import_paths:
        if validate_import_path(path, config.external_path) is not None:
            continue  # missing, unreadable or fenced out: the next scan reports it
        real = os.path.realpath(path)
        if is_inside(fence, real):  # never watch outside the fence
            found.setdefault(real, Root(real, path))
    return tuple(
        root
        for real, root in sorted(found.items())
        if not any(o != real and Root(o, "").holds(real) for o in found)
    )


def survey(config: LibraryConfig) -> tuple[tuple[Root, ...], str]:
    """The roots to watch and the real external path (blocking: run it in a thread)."""
    return watchable_roots(config), os.path.realpath(config.external_path or "/")


@dataclass
class Plan:
    """What to do with a batch of settled folders."""

    publish: list[tuple[str, Root]] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # parents to touch again
    skipped: list[str] = field(default_factory=list)  # outside the import paths or the fence


@dataclass
class LibraryWatch:
    """A library this replica holds the lease of, and its running observer."""

    config: LibraryConfig
    lease: Lease
    debouncer: Debouncer
    roots: tuple[Root, ...] = ()
    fence: str = ""
    observer: BaseObserver | None = None
    polling: bool = False  # the observer polls (configured, or inotify's limits were reached)

    def root_for(self, directory: str) -> Root | None:
        held = [r for r in self.roots if r.holds(directory)]
        return max(held, key=lambda r: len(r.real)) if held else None

    def sort_out(self, ready: list[str]) -> Plan:
        """Decide what to do with settled folders (blocking: it looks at the disk).

        A folder that no longer exists is not reconciled itself: the reconciliation of its
        nearest existing ancestor takes everything below it offline at once (the scanner's
        missing-subfolder rule), so it is handed to that ancestor unless it is in this batch
        already. Asking for both would make two tasks race over the same assets.
        """
        plan = Plan()
        existing: dict[str, Root] = {}
        vanished: list[tuple[str, Root]] = []
        for directory in ready:
            root = self.root_for(directory)
            # Resolved again now: a folder may have been swapped for a symlink since its event.
            if root is None or not is_inside(self.fence, directory):
                plan.skipped.append(directory)
            elif os.path.isdir(directory):
                existing[directory] = root
            elif directory != root.real:  # a vanished import path is left to the next scan
                vanished.append((directory, root))
        plan.publish = list(existing.items())
        for directory, root in vanished:
            up = os.path.dirname(directory)
            while up != root.real and not os.path.isdir(up):
                up = os.path.dirname(up)
            if up not in existing and up not in plan.deferred:
                plan.deferred.append(up)
        return plan

    def alive(self) -> bool:
        """False when an emitter stopped (inotify or polling saw its import path vanish) or
        a folder got no inotify watch (the watch limit was reached after the start)."""
        obs = self.observer
        return (
            obs is not None
            and obs.is_alive()
            and all(e.is_alive() for e in obs.emitters)
            and not self.limit_reached()
        )

    def limit_reached(self) -> bool:
        """A folder created since the start got no inotify watch: it is not being watched."""
        return isinstance(self.observer, NativeObserver) and self.observer.refused is not None
