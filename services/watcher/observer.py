"""watchdog observers on a library's import paths, turning events into folders to reconcile."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import InotifyFD
from watchdog.observers.polling import PollingObserverVFS

from services.watcher.debounce import UNSEEN
from shared.globs import MatchTooSlow
from shared.media import asset_type, is_hidden
from shared.paths import Signature, signature, within

if TYPE_CHECKING:
    import uuid

    from watchdog.observers.inotify_c import CallbackId, Mask, WatchCallback, WatchDescriptor

    from shared.globs import ExclusionMatcher

log = logging.getLogger(__name__)

# Only what can change a library. Leaving out opened / closed-without-write keeps the inotify
# mask small: the metadata service reading every new photo would otherwise wake us twice each.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class Touch(NamedTuple):
    """One folder touched by an event, and the eligible file in it the event was about."""

    directory: str
    file: str | None = None
    sig: Signature | None = UNSEEN
    writing: bool | None = None


class _InotifyInstance(InotifyFD):
    """watchdog's inotify instance, remembering the first folder the watch limit refused.

    watchdog skips a folder below an import path that it cannot watch without a word (only
    the import path itself raises), when it starts and whenever a new folder appears later;
    this is how the watcher learns that part of a library went unwatched.
    """

    def __init__(self) -> None:
        super().__init__()
        self.refused: str | None = None

    def add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        try:
            return super().add_callback(path, mask, callback, id_)
        except OSError as e:
            if e.errno == errno.ENOSPC and self.refused is None:
                self.refused = os.fsdecode(path)
            raise


class NativeObserver(BaseObserver):
    """watchdog's inotify observer (one inotify instance), telling when a watch was refused."""

    def __init__(self) -> None:
        self._instance = _InotifyInstance()  # EMFILE here when the instance limit is reached
        self._instance.start()
        super().__init__(
            InotifyEmitter, timeout=DEFAULT_OBSERVER_TIMEOUT, inotify_fd=self._instance
        )

    @property
    def refused(self) -> str | None:
        """The first folder that got no watch because the watch limit was reached."""
        return self._instance.refused

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._instance.stop()
        if self._instance.is_alive():
            self._instance.join()


def make_observer(use_polling: bool, interval_ms: int) -> BaseObserver:
    """inotify by default; polling (for network drives) that never follows a symlink.

    watchdog's PollingObserver stats with os.stat, so its snapshots would walk through a
    symlinked folder out of the external path, and round a symlink loop until the path is too
    long; lstat makes every link a leaf, as inotify (follow_symlink=False) does.
    """
    if use_polling:
        return PollingObserverVFS(os.lstat, os.scandir, polling_interval=interval_ms / 1000)
    return NativeObserver()


class ImportPathHandler(FileSystemEventHandler):
    """Filters the events under one import path (its real path) and hands on folder touches.

    Called on watchdog's thread: `sink` must be thread-safe, and nothing here may raise, since
    an exception would end the observer's thread. A folder is only ever the import path or
    below it, so the scanner is never asked about a folder outside the library.
    """

    def __init__(
        self,
        library_id: uuid.UUID,
        root: str,
        matcher: ExclusionMatcher,
        *,
        native: bool,
        sink: Callable[[Touch], None],
        stat: Callable[[str], Signature | None] = signature,
        excluded_roots: tuple[str, ...] = (),
    ) -> None:
        self.library_id = library_id
        # Real folders the scanner never lists (the upload folder): no work for it there.
        self.excluded_roots = excluded_roots
        self.root = root.rstrip("/") or "/"
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        self.matcher = matcher
        # inotify tells writes (IN_MODIFY) from their end (IN_CLOSE_WRITE); polling cannot.
        self.native = native
        self._sink = sink
        self._stat = stat

    def dispatch(self, event: FileSystemEvent) -> None:
        for touch in self.touches(event):
            self._sink(touch)

    def touches(self, event: FileSystemEvent) -> list[Touch]:
        """The folders `event` makes worth reconciling (none for irrelevant events)."""
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        if event.is_directory:
            if kind == "created":
                return self._dir(src, itself=True)
            if kind == "deleted":
                if src == self.root:
                    log.warning(
                        "watch library %s: import path %s is gone; the next scan "
                        "will take its assets offline",
                        self.library_id,
                        self.root,
                    )
                    return []
                return self._dir(src, itself=False)
            if kind == "moved":
                return self._dir(src, itself=False) + self._dir(dest, itself=True)
            return []  # a folder's own mtime or attributes: its children's events say more
        if kind == "moved":
            return self._file(src, gone=True) + self._file(dest, writing=False)
        if kind == "deleted":
            return self._file(src, gone=True)
        if kind == "closed":
            return self._file(src, writing=False)
        if kind == "modified":
            return self._file(src, writing=True if self.native else None)
        if kind in ("created", "attrib"):
            # Not "writing": a hard link, a symlink, or a file in a folder moved in has no
            # close event to come. A real write says so with IN_MODIFY.
            return self._file(src)
        return []

    def _relevant(self, path: str) -> bool:
        """Below the import path, with no hidden component on the way (as the scanner skips)."""
        if not path.startswith(self._prefix):
            return False
        if any(within(x, path) for x in self.excluded_roots):
            return False
        return not any(is_hidden(part) for part in path[len(self._prefix) :].split("/") if part)

    def _dir(self, path: str, *, itself: bool) -> list[Touch]:
        if not path or not self._relevant(path):
            return []
        parent = os.path.dirname(path)
        out = [Touch(parent)]
        if itself:
            out.append(Touch(path))  # what was created or moved in may hold files already
        return out

    def _file(self, path: str, *, gone: bool = False, writing: bool | None = None) -> list[Touch]:
        if not path or not self._relevant(path):
            return []
        parent = os.path.dirname(path)
        if asset_type(path) is None:
            # A non-media name matters only by vanishing: it may have been a link to a folder.
            return [Touch(parent)] if gone else []
        # Patterns too slow to match: the scanner decides, and records it as a problem.
        with contextlib.suppress(MatchTooSlow):
            if self.matcher.excludes(path, self.root):
                return []  # the scanner would exclude it; do not make it work for nothing
        if gone:
            return [Touch(parent, path, None, False)]
        return [Touch(parent, path, self._stat(path), writing)]


def threadsafe_sink(
    loop_call: Callable[..., object], touch: Callable[..., None]
) -> Callable[[Touch], None]:
    """A sink that runs `touch(*t)` on the event loop (`loop_call` is call_soon_threadsafe)."""

    def sink(t: Touch) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while we shut down
            loop_call(touch, t.directory, t.file, t.sig, t.writing)

    return sink
