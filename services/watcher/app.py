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
from typing import TYPE_CHECKING, Final

import msgspec
import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.watcher.debounce import Debouncer
from services.watcher.folders import LibraryConfig, LibraryWatch, Root, survey
from services.watcher.lease import Lease
from services.watcher.limits import inotify_limits
from services.watcher.observer import NativeObserver
from services.watcher.observing import Observing, stop_observer
from services.watcher.queueing import FolderQueue
from services.watcher.writers import being_written
from shared import events as ev
from shared import sysconfig
from shared.bus import EventBus, connect, ensure_streams
from shared.checkpoint import CheckpointWaiter, follow_checkpoint
from shared.db import create_engine, scalar
from shared.errors import InvalidInput, NotReady
from shared.fence import Fence
from shared.globs import ExclusionMatcher
from shared.health import Health, beat, database_check, flag_check, nats_check

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.kv import KeyValue
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.settings import Settings

__all__ = ["LibraryConfig", "LibraryWatch", "Root", "Watcher", "build_watcher", "serve"]

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
        self.observing = Observing(
            None, str(settings.upload_path), False, 0, lambda polling: self._settle(polling=polling)
        )
        self._apply(self.config)
        self.reload_every = reload_every
        self.renew_every = renew_every
        self.replica_id = replica_id or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.watches: dict[uuid.UUID, LibraryWatch] = {}
        self.queue = FolderQueue(self.js, settings.nats)
        self._kv: KeyValue | None = None
        self._wake = asyncio.Event()
        self._waiter: CheckpointWaiter | None = None
        self.bus = EventBus(nc, settings.nats)
        self.subscribed = False  # its event subscriptions are open (readiness)

    def _apply(self, config: sysconfig.LibraryWatchConfig) -> None:
        """Take library.watch as it is now (polling or inotify, interval, settle window)."""
        self.config = config
        self.use_polling = self.observing.use_polling = config.use_polling
        self.interval_ms = self.observing.interval_ms = config.interval
        self.quiet = self._settle(polling=self.use_polling)

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "watcher not started"
        return self._kv

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; give every lease back on the way out."""
        self.observing.loop = loop = asyncio.get_running_loop()
        self._kv = await self.js.key_value(self.settings.nats.name("leases"))
        self._waiter = await follow_checkpoint(self.nc, self.settings.nats, scalar(self.engine))
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
                await self.queue.flush(list(self.watches.values()))
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
            wanted = (await sysconfig.current(scalar(self.engine), self.settings.scan)).watch
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
        roots, fence = await asyncio.to_thread(survey, config)
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
                await self.observing.fall_back(watch, errno.ENOSPC, limits, watch.observer.refused)
            await stop_observer(watch)
        watch.config, watch.roots = config, roots
        watch.fence = fence
        watch.debouncer.busy = functools.partial(being_written, Fence(fence))
        observer = await self.observing.start(watch, matcher, paths)
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

    async def _drop(self, library_id: uuid.UUID, reason: str) -> None:
        watch = self.watches.pop(library_id, None)
        if watch is None:
            return
        await stop_observer(watch)
        watch.debouncer.clear()
        try:
            await watch.lease.release()
        except nats.errors.Error as e:
            log.warning(
                "watch library %s: lease not released (it expires by itself): %s", library_id, e
            )
        for root in watch.roots:
            log.info("watch library %s: stopped watching %s (%s)", library_id, root.real, reason)


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
    health.add("postgres", database_check(scalar(watcher.engine)))
    health.add("consumer", flag_check(lambda: watcher.subscribed, "not following events yet"))
    beating = asyncio.create_task(beat(watcher.nc, settings.nats, health, stop))
    try:
        await watcher.run(stop)
    finally:
        stop.set()
        await beating
        await watcher.close()
