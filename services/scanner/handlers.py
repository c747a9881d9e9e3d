"""The scanner's dependencies, handed to its handlers: one per task kind (start, folder,
subtree, finish), each in its own module, each loading, deciding and publishing. A library's
deletion is finished by the renditions' owner, the metadata service (decision 0027)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.scanner import finish, folder, start, subtree
from services.scanner.crawl import Fence
from services.scanner.publish import BirthsRefused
from services.scanner.repository import ScanRepository
from services.scanner.rules import patterns_hash
from shared.bus import EventBus
from shared.consumer import Retry
from shared.globs import ExclusionMatcher
from shared.work import ScanSubtree

if TYPE_CHECKING:
    import asyncpg
    from nats.aio.client import Client

    from shared import events as ev
    from shared.settings import Settings
    from shared.work import DirTask

# Seconds before a folder whose births were refused is planned again (the projector applies
# the other side's births within a batch or two).
BIRTHS_RETRY = 1.0


@dataclass(frozen=True)
class LibraryState:
    """What a directory task needs to know about its library, loaded once per scan."""

    owner_id: uuid.UUID
    import_paths: tuple[str, ...]
    fence: Fence | None
    patterns_hash: str


class Scanner:
    """Scans libraries; any number of replicas share the work through the WORK stream."""

    def __init__(self, nc: Client, db: asyncpg.Pool, settings: Settings) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.db = db  # asyncpg's pool (shared/pg.py): the scanner loads no SQLAlchemy
        self.settings = settings
        self.bus = EventBus(nc, settings.nats)
        self.repo = ScanRepository(db)
        self._libraries: dict[uuid.UUID, LibraryState] = {}

    async def library(self, library_id: uuid.UUID, *, fresh: bool = False) -> LibraryState | None:
        """The library as a scan sees it (cached per replica; `fresh` reads it again)."""
        if not fresh and library_id in self._libraries:
            return self._libraries[library_id]
        row = await self.repo.library(library_id)
        if row is None or row.deleting:
            self._libraries.pop(library_id, None)
            return None
        fence = None
        if row.external_path:
            # In a thread: resolving a path on a hung network mount must not stall the loop.
            real = await asyncio.to_thread(os.path.realpath, row.external_path)
            upload = await asyncio.to_thread(os.path.realpath, self.settings.upload_path)
            # Compiling a library's patterns can take a while (up to a second at the API's
            # bounds, longer for patterns stored before them): not on the loop either.
            matcher = await asyncio.to_thread(ExclusionMatcher, list(row.exclusion_patterns))
            fence = Fence(real, matcher, excluded_roots=(upload,))
        state = LibraryState(
            row.owner_id, row.import_paths, fence, patterns_hash(row.exclusion_patterns)
        )
        if len(self._libraries) > 256:
            self._libraries.clear()
        self._libraries[library_id] = state
        return state

    def forget(self, library_id: uuid.UUID) -> None:
        self._libraries.pop(library_id, None)

    # The handlers, by what arrives.

    async def start_scan(self, e: ev.LibraryScanRequested) -> None:
        await start.handle_scan_requested(self, e)

    async def run_dir(
        self, task: DirTask, keepalive: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        try:
            if isinstance(task, ScanSubtree):
                await subtree.handle_subtree_task(self, task, keepalive)
            else:
                await folder.handle_folder_task(self, task, keepalive)
        except BirthsRefused as e:
            # Someone recorded files of this folder since our read of it: planned again once
            # the read model has their births (decision 0030); nobody's fault, never a dead
            # letter.
            raise Retry(f"folder {e} changed meanwhile; planned again", BIRTHS_RETRY) from e

    async def scan_backlog(self, scan_id: uuid.UUID) -> int:
        return await finish.scan_backlog(self, scan_id)

    async def finish_scan(self, scan_id: uuid.UUID, library_id: uuid.UUID) -> None:
        await finish.finish_scan(self, scan_id, library_id)
