"""Composition root of the watcher: a leased observer per library, queuing settled folders."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import msgspec
import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.watcher.debounce import Debouncer
from services.watcher.lease import Lease
from services.watcher.limits import (
    LIMIT_ERRNOS,
    InotifyLimits,
    count_folders,
    inotify_limits,
    limit_message,
)
from services.watcher.observer import (
    EVENT_FILTER,
    ImportPathHandler,
    NativeObserver,
    make_observer,
    threadsafe_sink,
)
from services.watcher.writers import being_written
from shared import events as ev
from shared import sysconfig
from shared.bus import EventBus, connect, ensure_streams
from shared.checkpoint import CheckpointWaiter, follow_checkpoint
from shared.db import create_engine
from shared.errors import InvalidInput, NotReady
from shared.fence import Fence
from shared.globs import ExclusionMatcher
from shared.health import Health, beat, database_check, flag_check, nats_check
from shared.paths import is_inside, validate_import_path, within
from shared.work import WORK_ENCODER, dir_task_msg_id, scan_work_subject, watch_task

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.kv import KeyValue
    from sqlalchemy.ext.asyncio import AsyncEngine
    from watchdog.observers.api import BaseObserver

    from shared.settings import Settings

log = logging.getLogger(__name__)

RELOAD_EVERY: Final = 30.0  # seconds between reads of the libraries, besides their events
WAKE_TIMEOUT: Final = 5.0  # seconds a library event waits for the read models before a reload
RENEW_EVERY: Final = 20.0  # seconds between lease renewals (the bucket's TTL is 60 s)
NATIVE_QUIET: Final = 1.0  # inotify's debounce window; polling uses one interval

RELOAD_ON = (
    ev.LibraryCreated,
    ev.ImportPathsChanged,
    ev.ExclusionPatternsChanged,
    ev.LibraryDeletionStarted,
    ev.LibraryDeleted,
    ev.ExternalPathSet,
    ev.UserDeleted,
    ev.SystemConfigUpdated,
)
"""Events after which the watched libraries are read again at once."""

_LIBRARIES = text(
    "SELECT l.id, l.import_paths, l.exclusion_patterns, u.external_path FROM libraries l "
    "JOIN users u ON u.id = l.owner_id WHERE l.type = 'EXTERNAL' AND NOT l.deleting"
)


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


def _survey(config: LibraryConfig) -> tuple[tuple[Root, ...], str]:
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


class Watcher:
    """Watches the external libraries it holds leases for and asks the scanner to reconcile
    each folder that changed, once it has settled. It never decides about assets itself."""

    def __init__(
        self,
        nc: Client,
        engine: AsyncEngine,
        settings: Settings,
        *,
        quiet: float | None = None,
        reload_every: float = RELOAD_EVERY,
        renew_every: float = RENEW_EVERY,
        replica_id: str | None = None,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.engine = engine
        self.settings = settings
        self._quiet_override = quiet
        self.config = sysconfig.defaults(settings.scan).watch
        # Libraries inotify could not watch, with the limits it met: polled until they change.
        self._fallbacks: dict[uuid.UUID, InotifyLimits] = {}
        self._apply(self.config)
        self.reload_every = reload_every
        self.renew_every = renew_every
        self.replica_id = replica_id or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.watches: dict[uuid.UUID, LibraryWatch] = {}
        # (library, folder) -> WORK subject of the reconciliation we queued for it last.
        self._inflight: dict[tuple[uuid.UUID, str], str] = {}
        self._kv: KeyValue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._waiter: CheckpointWaiter | None = None
        self.bus = EventBus(nc, settings.nats)
        self.subscribed = False  # its event subscriptions are open (readiness)

    def _apply(self, config: sysconfig.LibraryWatchConfig) -> None:
        """Take library.watch as it is now (polling or inotify, interval, settle window)."""
        self.config = config
        self.use_polling = config.use_polling
        self.interval_ms = config.interval
        self.quiet = self._settle(polling=self.use_polling)

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "watcher not started"
        return self._kv

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; give every lease back on the way out."""
        self._loop = loop = asyncio.get_running_loop()
        self._kv = await self.js.key_value(self.settings.nats.name("leases"))
        self._waiter = await follow_checkpoint(self.nc, self.settings.nats, self.engine)
        # From the first event the read models do not hold yet: the first reload (below) reads
        # them after subscribing, so no change falls between the two.
        start = await self._waiter.current() + 1
        subscriptions = [
            await self.js.subscribe(
                self.settings.nats.subject("events", aggregate, ">"),
                cb=self._on_event,
                ordered_consumer=True,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
                ),
            )
            for aggregate in ("server", "user", "library")
        ]
        self.subscribed = True
        next_reload = loop.time()
        next_renew = loop.time() + self.renew_every
        log.info("watch: replica %s started", self.replica_id)
        try:
            while not stop.is_set():
                if any(w.limit_reached() for w in self.watches.values()):
                    self._wake.set()  # a new folder got no watch: poll that library instead
                if loop.time() >= next_reload or self._wake.is_set():
                    self._wake.clear()
                    await self.reload()
                    next_reload = loop.time() + self.reload_every
                if loop.time() >= next_renew:
                    await self.renew()
                    next_renew = loop.time() + self.renew_every
                await self.flush()
                tick = min(0.25, self.quiet / 4)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)
        finally:
            self.subscribed = False
            for sub in subscriptions:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
            for library_id in list(self.watches):
                await self._drop(library_id, "shutting down")

    async def _on_event(self, msg: Msg) -> None:
        """A library, a user's external path or the configuration changed: reload as soon as
        the read models show it (instead of at the next periodic read)."""
        try:
            event = ev.decode(msg.data)
        except msgspec.ValidationError:
            return
        if not isinstance(event, RELOAD_ON):
            return
        assert self._waiter is not None
        # On NotReady, reload anyway: the periodic read catches up with anything missed.
        with contextlib.suppress(NotReady):
            await self._waiter.wait(msg.metadata.sequence.stream, WAKE_TIMEOUT)
        self._wake.set()

    async def close(self) -> None:
        await self.nc.drain()
        await self.engine.dispose()

    # --- which libraries ------------------------------------------------------------------

    async def load(self) -> dict[uuid.UUID, LibraryConfig]:
        """The external libraries that are not being deleted, with their owners' fences."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_LIBRARIES)).all()
        return {
            r.id: LibraryConfig(
                r.id, tuple(r.import_paths), tuple(r.exclusion_patterns), r.external_path
            )
            for r in rows
        }

    async def reload(self) -> None:
        """Start, restart or stop observers to match the libraries as they are now."""
        try:
            wanted = (await sysconfig.current(self.engine, self.settings.scan)).watch
            configs = await self.load() if wanted.enabled else {}
        except (DBAPIError, OSError) as e:
            log.warning(
                "watch: cannot read the libraries, keeping %d watches: %s", len(self.watches), e
            )
            return
        if wanted != self.config:
            for library_id in list(self.watches):
                await self._drop(library_id, "library.watch changed")
            self._apply(wanted)
            how = f"polling every {wanted.interval} ms" if wanted.use_polling else "inotify"
            log.info(
                "watch: replica %s %s",
                self.replica_id,
                f"watches with {how}, settle window {self.quiet:.2f} s"
                if wanted.enabled
                else "is idle: library.watch.enabled is off",
            )
        for library_id in [i for i in self.watches if i not in configs]:
            await self._drop(library_id, "library deleted")
        for config in configs.values():
            try:
                await self._reconcile(config)
            except nats.errors.Error as e:
                log.warning(
                    "watch library %s (%s): lease trouble, will retry: %s",
                    config.id,
                    ", ".join(config.import_paths),
                    e,
                )

    async def _reconcile(self, config: LibraryConfig) -> None:
        roots, fence = await asyncio.to_thread(_survey, config)
        watch = self.watches.get(config.id)
        if watch is not None and watch.config == config and watch.roots == roots and watch.alive():
            return
        paths = ", ".join(config.import_paths) or "(no import paths)"
        if not roots:
            if watch is not None:
                await self._drop(config.id, "no import path can be watched")
            return
        try:
            matcher = ExclusionMatcher(config.exclusion_patterns)
        except InvalidInput as e:
            log.warning("watch library %s (%s): not watched: %s", config.id, paths, e)
            if watch is not None:
                await self._drop(config.id, "invalid exclusion pattern")
            return
        if watch is None:
            lease = Lease(self.kv, f"watch-{config.id}", self.replica_id)
            if not await lease.acquire():
                log.debug("watch library %s (%s): another replica holds it", config.id, paths)
                return
            watch = LibraryWatch(config, lease, Debouncer(self.quiet))
            self.watches[config.id] = watch
        else:
            if watch.limit_reached():
                assert isinstance(watch.observer, NativeObserver)
                limits = await asyncio.to_thread(inotify_limits)
                await self._fall_back(watch, errno.ENOSPC, limits, watch.observer.refused)
            await self._stop_observer(watch)
        watch.config, watch.roots = config, roots
        watch.fence = fence
        watch.debouncer.busy = functools.partial(being_written, Fence(fence))
        observer = await self._start_observer(watch, matcher, paths)
        if observer is None:
            await self._drop(config.id, "observer failed")
            return
        watch.observer = observer
        how = f"polling every {self.interval_ms} ms" if watch.polling else "inotify"
        for root in roots:
            log.info("watch library %s: watching %s with %s", config.id, root.real, how)
        # What changed before the observer started (a new library, a takeover, a restart) is
        # found by a *new* scan: cheap on an unchanged library, thanks to the folder index.
        try:
            await self.bus.publish(
                ev.LibraryScanRequested(
                    stream_id=config.id,
                    scan_id=uuid.uuid4(),
                    mode=ev.ScanMode.NEW,
                    requested_by="watcher",
                )
            )
        except nats.errors.Error as e:
            log.warning("watch library %s (%s): no catch-up scan: %s", config.id, paths, e)

    def _observe(
        self, watch: LibraryWatch, matcher: ExclusionMatcher, *, polling: bool
    ) -> BaseObserver:
        """An observer on every root of `watch`, started (blocking: run it in a thread)."""
        assert self._loop is not None
        sink = threadsafe_sink(self._loop.call_soon_threadsafe, watch.debouncer.touch)
        observer = make_observer(polling, self.interval_ms)
        try:
            for root in watch.roots:
                handler = ImportPathHandler(
                    watch.config.id,
                    root.real,
                    matcher,
                    native=not polling,
                    sink=sink,
                    excluded_roots=(os.path.realpath(self.settings.upload_path),),
                )
                observer.schedule(handler, root.real, recursive=True, event_filter=EVENT_FILTER)
            # inotify adds a watch per folder (and polling takes its first snapshot) here.
            observer.start()
        except BaseException:
            observer.stop()
            raise
        return observer

    async def _start_observer(
        self, watch: LibraryWatch, matcher: ExclusionMatcher, paths: str
    ) -> BaseObserver | None:
        """Start watching `watch`'s roots: with inotify unless polling is configured or
        inotify's limits stopped it before (and have not changed since); with polling when a
        limit is reached now, saying so once. None when no observer could start."""
        library_id = watch.config.id
        limits = await asyncio.to_thread(inotify_limits)
        polling = self.use_polling or self._fallbacks.get(library_id) == limits
        error: int | None = None
        refused: str | None = None
        try:
            observer = await asyncio.to_thread(self._observe, watch, matcher, polling=polling)
            if isinstance(observer, NativeObserver) and observer.refused is not None:
                # Some folders below an import path got no watch: watchdog went on without them.
                error, refused = errno.ENOSPC, observer.refused
                await self._stop(observer)
        except OSError as e:
            if polling or e.errno not in LIMIT_ERRNOS:
                log.error("watch library %s (%s): cannot watch: %s", library_id, paths, e)
                return None
            error = e.errno
        if error is not None:
            await self._fall_back(watch, error, limits, refused)
            try:
                observer = await asyncio.to_thread(self._observe, watch, matcher, polling=True)
            except OSError as e:
                log.error("watch library %s (%s): cannot poll either: %s", library_id, paths, e)
                return None
        watch.polling = polling or error is not None
        watch.debouncer.quiet = self._settle(polling=watch.polling)
        return observer

    async def _fall_back(
        self, watch: LibraryWatch, error: int, limits: InotifyLimits, refused: str | None
    ) -> None:
        """Remember that inotify cannot watch this library under these limits, and say it."""
        self._fallbacks[watch.config.id] = limits
        folders = await asyncio.to_thread(count_folders, [r.real for r in watch.roots])
        log.warning(
            "watch library %s (%s): %s",
            watch.config.id,
            ", ".join(r.real for r in watch.roots),
            limit_message(error, limits, folders, self.interval_ms, refused),
        )

    def _settle(self, *, polling: bool) -> float:
        """The settle window: one polling interval, or inotify's, unless the caller chose."""
        if self._quiet_override is not None:
            return self._quiet_override
        return self.interval_ms / 1000 if polling else NATIVE_QUIET

    async def renew(self) -> None:
        """Keep our leases; stop watching any library whose lease went to another replica."""
        for library_id, watch in list(self.watches.items()):
            try:
                kept = await watch.lease.renew()
            except nats.errors.Error as e:
                # The key outlives a short outage; if it expires, the next renewal says so.
                log.warning(
                    "watch library %s (%s): cannot renew lease, still watching: %s",
                    library_id,
                    ", ".join(r.real for r in watch.roots),
                    e,
                )
                continue
            if not kept:
                log.warning(
                    "watch library %s (%s): lease lost to another replica; stopping",
                    library_id,
                    ", ".join(r.real for r in watch.roots),
                )
                await self._drop(library_id, "lease lost")

    async def _stop_observer(self, watch: LibraryWatch) -> None:
        observer, watch.observer = watch.observer, None
        if observer is not None:
            await self._stop(observer)

    @staticmethod
    async def _stop(observer: BaseObserver) -> None:
        observer.stop()
        if observer.is_alive():
            await asyncio.to_thread(observer.join, 10)

    async def _drop(self, library_id: uuid.UUID, reason: str) -> None:
        watch = self.watches.pop(library_id, None)
        if watch is None:
            return
        await self._stop_observer(watch)
        watch.debouncer.clear()
        try:
            await watch.lease.release()
        except nats.errors.Error as e:
            log.warning(
                "watch library %s: lease not released (it expires by itself): %s", library_id, e
            )
        for root in watch.roots:
            log.info("watch library %s: stopped watching %s (%s)", library_id, root.real, reason)

    # --- publishing -----------------------------------------------------------------------

    async def flush(self) -> None:
        """Queue a one-folder reconciliation for every folder that has settled."""
        batches = [(w, ready) for w in list(self.watches.values()) if (ready := w.debouncer.due())]
        if not batches:
            return
        try:
            queued = await self._queued_subjects() if self._inflight else set()
        except nats.errors.Error as e:
            log.warning(
                "watch: cannot read the WORK backlog, holding %d folders: %s",
                sum(len(r) for _, r in batches),
                e,
            )
            for watch, ready in batches:
                for directory in ready:
                    watch.debouncer.touch(directory)
            return
        self._inflight = {k: v for k, v in self._inflight.items() if v in queued}
        for watch, ready in batches:
            plan = await asyncio.to_thread(watch.sort_out, ready)
            for directory in plan.skipped:
                log.warning(
                    "watch library %s: %s is outside its import paths; skipped",
                    watch.config.id,
                    directory,
                )
            for directory in plan.deferred:
                watch.debouncer.touch(directory)
            for directory, root in plan.publish:
                if (watch.config.id, directory) in self._inflight:
                    # One reconciliation of a folder at a time: two would race to publish the
                    # same asset's events, and the loser's change would be dropped.
                    watch.debouncer.touch(directory)
                    continue
                await self._queue(watch, directory, root)

    async def _queued_subjects(self) -> set[str]:
        """Subjects of WORK with a task still queued or in flight (acked ones are gone)."""
        nats_settings = self.settings.nats
        info = await self.js.stream_info(
            nats_settings.name("WORK"), subjects_filter=nats_settings.subject("work", "scan", ">")
        )
        return {s for s, n in (info.state.subjects or {}).items() if n}

    async def _queue(self, watch: LibraryWatch, directory: str, root: Root) -> None:
        task = watch_task(
            watch.config.id,
            directory,
            root.import_path,
            settle_ms=int(watch.debouncer.quiet * 1000),
        )
        try:
            payload = WORK_ENCODER.encode(task)
        except UnicodeEncodeError:
            log.warning(
                "watch library %s: folder %r is not valid UTF-8; left to scans",
                watch.config.id,
                directory,
            )
            return
        subject = scan_work_subject(self.settings.nats, task.scan_id)
        try:
            await self.js.publish(
                subject,
                payload,
                stream=self.settings.nats.name("WORK"),
                headers={"Nats-Msg-Id": dir_task_msg_id(task)},
            )
        except nats.errors.Error as e:
            log.warning(
                "watch library %s: cannot queue %s, will retry: %s", watch.config.id, directory, e
            )
            watch.debouncer.touch(directory)
            return
        self._inflight[(watch.config.id, directory)] = subject
        log.debug(
            "watch library %s: queued %s (import path %s)",
            watch.config.id,
            directory,
            root.import_path,
        )


async def build_watcher(
    settings: Settings,
    *,
    quiet: float | None = None,
    reload_every: float = RELOAD_EVERY,
    renew_every: float = RENEW_EVERY,
) -> Watcher:
    """The composition root: connect NATS and PostgreSQL and make the (not yet running)
    watcher. `quiet` overrides the settle window (1 s for inotify, one polling interval)."""
    nc = await connect(settings.nats, "watcher")
    await ensure_streams(nc, settings.nats)
    return Watcher(
        nc,
        create_engine(settings.db.url),
        settings,
        quiet=quiet,
        reload_every=reload_every,
        renew_every=renew_every,
    )


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    quiet: float | None = None,
    reload_every: float = RELOAD_EVERY,
    renew_every: float = RENEW_EVERY,
    health: Health | None = None,
) -> None:
    """Run the watcher in the current event loop until `stop` is set (tests, embedding)."""
    health = health or Health("watcher")
    watcher = await build_watcher(
        settings, quiet=quiet, reload_every=reload_every, renew_every=renew_every
    )
    health.add("nats", nats_check(watcher.nc))
    health.add("postgres", database_check(watcher.engine))
    health.add("consumer", flag_check(lambda: watcher.subscribed, "not following events yet"))
    beating = asyncio.create_task(beat(watcher.nc, settings.nats, health, stop))
    try:
        await watcher.run(stop)
    finally:
        stop.set()
        await beating
        await watcher.close()
