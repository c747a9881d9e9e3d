"""The metadata worker's handler: read a file, store its thumbnails, record what was read."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import TYPE_CHECKING, Final

import msgspec
from sqlalchemy import text

from services.metadata.exif import UnreadableFile, read_metadata
from services.metadata.pool import WorkerCrashed, WorkerPool, WorkerTimeout
from services.metadata.renditions.store import RenditionStore, rendition_keys
from services.metadata.thumbs import make_thumbnails
from services.metadata.xmp import apply_sidecar, find_sidecar
from shared import events as ev
from shared import metrics
from shared.bus import EventBus
from shared.fence import Escape, Fence, NotRegular, Opened
from shared.metadata import AssetMetadata
from shared.paths import Signature, stat_signature

if TYPE_CHECKING:
    from nats.aio.client import Client
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.settings import Settings

log = logging.getLogger(__name__)

FileEvent = ev.FileDiscovered | ev.FileChanged | ev.AssetUploaded

# How long a library's fence root is kept: a changed external path takes effect within this.
ROOT_TTL: Final = 10.0
# Bytes per second of a file's size added to the time bound (a NAS on gigabit ethernet).
READ_RATE: Final = 100e6

_LIBRARY_ASSETS = text("SELECT id FROM assets WHERE library_id = :id")
_READ_ALREADY = text(
    "SELECT id FROM assets WHERE id = ANY(CAST(:ids AS uuid[])) AND metadata_status <> 'pending'"
)
# Renditions deleted at once while a library goes (each is a few round trips to NATS).
DELETE_CONCURRENCY: Final = 32

_EXTERNAL_PATH = text(
    "SELECT u.external_path FROM libraries l JOIN users u ON u.id = l.owner_id WHERE l.id = :id"
)


class Extracted(msgspec.Struct, frozen=True, kw_only=True):
    """What the worker process sends back: metadata and thumbnails, or why it could not."""

    metadata: AssetMetadata | None = None
    thumbnail: bytes | None = None
    preview: bytes | None = None
    thumbhash: bytes | None = None
    failure: str | None = None
    thumbnail_failure: str | None = None
    modified: float | None = None
    """The file's mtime (epoch seconds) just before it was read."""
    changed: bool = False
    """The file's size or mtime changed while it was being read (a copy still under way)."""

    @property
    def failed(self) -> bool:
        return self.metadata is None or self.thumbnail_failure is not None


class NotSettled(Exception):
    """The file could not be read and changed moments ago: probably still being copied."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"try again in {delay:.1f} s")
        self.delay = delay


def extract(root: str, path: str, max_size: int) -> Extracted:
    """Runs in a worker process: everything CPU-bound about one file.

    The file is opened once, through a Fence on `root` (the owner's real external path, or the
    upload folder), and every reader reads that open file: a name swapped for a symlink, a FIFO
    or a device is met when it is opened, never followed. Whether it changed while it was read is
    told by fstat of the open file and a fenced stat of its name afterwards.
    """
    fence = Fence(root)
    try:
        opened = fence.open_file(path)
    except Escape:
        return Extracted(failure="not read: outside the external path")
    except NotRegular as e:
        return Extracted(failure=f"not read: {e.strerror}")
    except OSError as e:
        return Extracted(failure=_cannot_read(e))
    with opened:
        before = stat_signature(opened.st)
        if opened.st.st_size > max_size:
            result = Extracted(
                failure=f"file too large: {opened.st.st_size} bytes, the limit is {max_size}"
            )
        else:
            result = _extract(fence, path, opened)
        after = stat_signature(os.fstat(opened.fd))
    try:
        now: Signature | None = stat_signature(fence.stat(path))
    except OSError:  # gone, or a symlink in its place now
        now = None
    return msgspec.structs.replace(
        result, modified=before[1] / 1e9, changed=after != before or now != before
    )


def _cannot_read(e: OSError) -> str:
    """The recorded reason for a file the file system would not give."""
    if isinstance(e, FileNotFoundError):
        return "the file disappeared before it could be read"
    return f"cannot read file: {e.strerror or e}"


def _extract(fence: Fence, path: str, opened: Opened) -> Extracted:
    try:
        meta = read_metadata(path, opened)
    except UnreadableFile as e:
        return Extracted(failure=f"unreadable file: {e}")
    except OSError as e:
        return Extracted(failure=_cannot_read(e))
    try:
        sidecar = find_sidecar(fence, path)
    except OSError as e:
        log.warning("metadata: sidecar of %s unreadable: %s", path, e)
        sidecar = None
    if sidecar is not None:
        with sidecar:
            try:
                meta = apply_sidecar(meta, sidecar)
            except OSError as e:
                log.warning("metadata: sidecar %s unreadable: %s", sidecar.real, e)
    try:
        thumbs = make_thumbnails(path, opened.proc_path)
    except UnreadableFile as e:
        return Extracted(metadata=meta, thumbnail_failure=f"no thumbnail: {e}")
    except OSError as e:
        return Extracted(metadata=meta, thumbnail_failure=f"no thumbnail: {e.strerror or e}")
    return Extracted(
        metadata=meta,
        thumbnail=thumbs.thumbnail,
        preview=thumbs.preview,
        thumbhash=thumbs.thumbhash,
    )


thumbnail_keys = rendition_keys  # the name the tests and the api's readers know


class MetadataWorker:
    """Handles FileDiscovered / FileChanged / AssetUploaded for any number of replicas."""

    def __init__(
        self, nc: Client, settings: Settings, pool: WorkerPool, engine: AsyncEngine
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.settings = settings
        self.bus = EventBus(nc, settings.nats)
        self.pool = pool
        self.engine = engine
        self.renditions = RenditionStore(self.js, settings.nats)
        self._roots: dict[uuid.UUID, tuple[float, str | None]] = {}

    async def fence_root(self, event: FileEvent) -> str | None:
        """The real folder the event's file must be beneath: the upload folder for an upload,
        else the library owner's external path (None: the owner has none, or the library is
        gone). Looked up in the read models and kept for a few seconds."""
        if isinstance(event, ev.AssetUploaded):
            return await asyncio.to_thread(os.path.realpath, self.settings.upload_path)
        now = time.monotonic()
        cached = self._roots.get(event.library_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.engine.connect() as conn:
            external = (await conn.execute(_EXTERNAL_PATH, {"id": event.library_id})).scalar()
        root = await asyncio.to_thread(os.path.realpath, external) if external else None
        self._roots[event.library_id] = (now + ROOT_TTL, root)
        return root

    async def handle(self, event: ev.BaseEvent, *, seq: int = 0, last_try: bool = False) -> None:
        """Read the file and record what was read; an asset's removal deletes its renditions.

        `seq` is the event's EVENTS stream sequence: it marks the renditions made from it.

        Raises:
            NotSettled: the file changed while it was read, or failed to read and changed less
                than the settle time ago (never for uploads, which are complete, nor on the
                last try).
        """
        if isinstance(event, ev.AssetRemoved):
            deleted = await self.renditions.remove(event.stream_id, seq)
            log.info("metadata: asset %s removed; %d renditions deleted", event.stream_id, deleted)
            return
        if not isinstance(event, ev.FileDiscovered | ev.FileChanged | ev.AssetUploaded):
            return
        root = await self.fence_root(event)
        path = event.path
        if isinstance(event, ev.AssetUploaded) and not os.path.isabs(path) and root is not None:
            path = os.path.join(root, path)  # relative to the upload folder
        result = await self._read(event, root, path)
        if not last_try and not isinstance(event, ev.AssetUploaded):
            self._check_settled(result)
        # Fixed ids: a redelivered event republishes the same fact, which NATS drops.
        event_id = uuid.uuid5(event.event_id, "metadata")
        metrics.METADATA_FILES.labels("failed" if result.failed else "read").inc()
        if result.metadata is None:
            log.info("metadata: asset %s path %s failed: %s", event.stream_id, path, result.failure)
            await self.bus.publish(
                ev.MetadataFailed(
                    stream_id=event.stream_id, event_id=event_id, reason=result.failure or "unknown"
                )
            )
            return
        thumb_key = preview_key = None
        thumbhash = None
        if result.thumbnail is not None and result.preview is not None:
            thumbhash = result.thumbhash
            thumb_key, preview_key = await self._store_renditions(event, seq, result)
        await self.bus.publish(
            ev.MetadataExtracted(
                stream_id=event.stream_id,
                event_id=event_id,
                metadata=result.metadata,
                thumbnail_key=thumb_key,
                preview_key=preview_key,
                thumbhash=thumbhash,
            )
        )
        if result.thumbnail_failure is not None:
            # The header was read but the pixels were not (truncated, corrupt): what was read
            # stays, and the failure is recorded after it, so the asset shows why it has no
            # thumbnail. Same subject, so the projector applies them in this order.
            log.info(
                "metadata: asset %s path %s: %s", event.stream_id, path, result.thumbnail_failure
            )
            await self.bus.publish(
                ev.MetadataFailed(
                    stream_id=event.stream_id,
                    event_id=uuid.uuid5(event.event_id, "renditions"),
                    reason=result.thumbnail_failure,
                    checksum=result.metadata.checksum,
                    file_size=result.metadata.file_size,
                )
            )

    async def handle_births(
        self,
        event: ev.FilesDiscovered,
        *,
        seq: int,
        last_try: bool = False,
        again: bool = False,
        concurrency: int = 2,
    ) -> None:
        """Read every file a FilesDiscovered names, `concurrency` at a time, as `handle` reads
        one. Raises NotSettled (the longest wait) when a file was met mid-copy, after the others
        were recorded; `again` (a redelivery) skips the assets already read."""
        files = event.discoveries()
        if again:
            async with self.engine.connect() as conn:
                done = set(
                    (await conn.execute(_READ_ALREADY, {"ids": [f.stream_id for f in files]}))
                    .scalars()
                    .all()
                )
            files = [f for f in files if f.stream_id not in done]
        gate = asyncio.Semaphore(concurrency)
        waits: list[float] = []

        async def one(f: ev.FileDiscovered) -> None:
            async with gate:
                try:
                    await self.handle(f, seq=seq, last_try=last_try)
                except NotSettled as e:
                    waits.append(e.delay)

        await asyncio.gather(*(one(f) for f in files))
        if waits:
            raise NotSettled(max(waits))

    async def finish_deletion(self, library_id: uuid.UUID) -> None:
        """Delete a deleted library's renditions, then record LibraryDeleted (which drops its
        assets' rows, so it waits for this). A redelivery lists what is left and repeats."""
        async with self.engine.connect() as conn:
            ids = (await conn.execute(_LIBRARY_ASSETS, {"id": library_id})).scalars().all()
        gate = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def remove(asset_id: uuid.UUID) -> int:
            async with gate:
                return await self.renditions.remove_all(asset_id)

        deleted = sum(await asyncio.gather(*(remove(i) for i in ids)))
        await self.bus.publish(
            ev.LibraryDeleted(stream_id=library_id, event_id=uuid.uuid5(library_id, "deleted"))
        )
        log.info("library %s deleted: %d renditions of %d assets", library_id, deleted, len(ids))

    async def _store_renditions(
        self, event: FileEvent, seq: int, result: Extracted
    ) -> tuple[str | None, str | None]:
        """Put the renditions; delete them again if the asset was removed while it was read
        (the removal, handled meanwhile, found nothing to delete)."""
        assert result.thumbnail is not None and result.preview is not None
        keys = await self.renditions.put(event.stream_id, seq, result.thumbnail, result.preview)
        if keys is None:  # a later reading's renditions are there: they are the asset's
            keys = rendition_keys(event.stream_id)
        last_seq, last = await self.bus.last_event("asset", event.stream_id)
        if isinstance(last, ev.AssetRemoved) and last_seq > seq:
            await self.renditions.remove(event.stream_id, last_seq)
        return keys

    async def _read(self, event: FileEvent, root: str | None, path: str) -> Extracted:
        """What a worker process read of the file, within the time bound."""
        if root is None:
            return Extracted(
                failure="not read: outside the external path (the owner has none, or the "
                "library is gone)"
            )
        # A big video takes its time to hash on a slow disk: one more second per 100 MB.
        timeout = self.settings.metadata_timeout + event.file_size / READ_RATE
        max_size = self.settings.metadata_max_file_size
        try:
            return await self.pool.run(timeout, extract, root, path, max_size)
        except WorkerTimeout as e:
            log.warning("metadata: asset %s path %s: %s; worker killed", event.stream_id, path, e)
            return Extracted(failure=f"not read: {e}; the reader was stopped")
        except WorkerCrashed as e:
            log.warning("metadata: asset %s path %s: %s", event.stream_id, path, e)
            return Extracted(failure=f"not read: {e}")

    def _check_settled(self, result: Extracted) -> None:
        """A scan or the watcher can meet a file mid-copy: a half-written JPEG or HEIC fails to
        decode, or its SHA-1 and its thumbnail come from different lengths of it. Such a reading
        is not recorded; the file is read again once it has been left alone for the settle time.
        """
        settle = self.settings.metadata_settle
        if settle <= 0 or result.modified is None:
            return
        if result.changed:
            raise NotSettled(settle)
        quiet = time.time() - result.modified
        if result.failed and quiet < settle:
            raise NotSettled(max(1.0, settle - quiet))
