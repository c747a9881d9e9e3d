"""Starting and stopping a library's observer: inotify, or polling when its limits are met."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.observers.api import BaseObserver

    from services.watcher.folders import LibraryWatch
    from shared.globs import ExclusionMatcher

log = logging.getLogger(__name__)


@dataclass
class Observing:
    """How this replica observes: inotify or polling (and its interval), and the libraries
    inotify could not watch, with the limits it met (polled until those change)."""

    loop: asyncio.AbstractEventLoop | None
    upload_path: str
    use_polling: bool
    interval_ms: int
    settle: Callable[[bool], float]  # the settle window, polling or not
    fallbacks: dict[uuid.UUID, InotifyLimits] = field(default_factory=dict)

    def observe(
        self, watch: LibraryWatch, matcher: ExclusionMatcher, *, polling: bool
    ) -> BaseObserver:
        """An observer on every root of `watch`, started (blocking: run it in a thread)."""
        assert self.loop is not None, "the watcher is not running"
        sink = threadsafe_sink(self.loop.call_soon_threadsafe, watch.debouncer.touch)
        observer = make_observer(polling, self.interval_ms)
        try:
            for root in watch.roots:
                handler = ImportPathHandler(
                    watch.config.id,
                    root.real,
                    matcher,
                    native=not polling,
                    sink=sink,
                    excluded_roots=(os.path.realpath(self.upload_path),),
                )
                observer.schedule(handler, root.real, recursive=True, event_filter=EVENT_FILTER)
            # inotify adds a watch per folder (and polling takes its first snapshot) here.
            observer.start()
        except BaseException:
            observer.stop()
            raise
        return observer

    async def start(
        self, watch: LibraryWatch, matcher: ExclusionMatcher, paths: str
    ) -> BaseObserver | None:
        """Start watching `watch`'s roots: with inotify unless polling is configured or
        inotify's limits stopped it before (and have not changed since); with polling when a
        limit is reached now, saying so once. None when no observer could start."""
        library_id = watch.config.id
        limits = await asyncio.to_thread(inotify_limits)
        polling = self.use_polling or self.fallbacks.get(library_id) == limits
        error: int | None = None
        refused: str | None = None
        try:
            observer = await asyncio.to_thread(self.observe, watch, matcher, polling=polling)
            if isinstance(observer, NativeObserver) and observer.refused is not None:
                # Some folders below an import path got no watch: watchdog went on without them.
                error, refused = errno.ENOSPC, observer.refused
                await stop(observer)
        except OSError as e:
            if polling or e.errno not in LIMIT_ERRNOS:
                log.error("watch library %s (%s): cannot watch: %s", library_id, paths, e)
                return None
            error = e.errno
        if error is not None:
            await self.fall_back(watch, error, limits, refused)
            try:
                observer = await asyncio.to_thread(self.observe, watch, matcher, polling=True)
            except OSError as e:
                log.error("watch library %s (%s): cannot poll either: %s", library_id, paths, e)
                return None
        watch.polling = polling or error is not None
        watch.debouncer.quiet = self.settle(watch.polling)
        return observer

    async def fall_back(
        self, watch: LibraryWatch, error: int, limits: InotifyLimits, refused: str | None
    ) -> None:
        """Remember that inotify cannot watch this library under these limits, and say it."""
        self.fallbacks[watch.config.id] = limits
        folders = await asyncio.to_thread(count_folders, [r.real for r in watch.roots])
        log.warning(
            "watch library %s (%s): %s",
            watch.config.id,
            ", ".join(r.real for r in watch.roots),
            limit_message(error, limits, folders, self.interval_ms, refused),
        )


async def stop(observer: BaseObserver) -> None:
    """Stop an observer and wait (in a thread, bounded) for its threads to end."""
    observer.stop()
    if observer.is_alive():
        await asyncio.to_thread(observer.join, 10)


async def stop_observer(watch: LibraryWatch) -> None:
    observer, watch.observer = watch.observer, None
    if observer is not None:
        await stop(observer)
