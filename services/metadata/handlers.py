"""The metadata worker's handler: read a file, store its thumbnails, record what was read."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import msgspec

from services.metadata.exif import UnreadableFile, read_metadata
from services.metadata.thumbs import make_thumbnails
from services.metadata.xmp import apply_sidecar, find_sidecar
from shared import events as ev
from shared import metrics
from shared.bus import EventBus
from shared.metadata import AssetMetadata
from shared.paths import signature

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.object_store import ObjectStore

    from shared.settings import Settings

log = logging.getLogger(__name__)


class Extracted(msgspec.Struct, frozen=True, kw_only=True):
    """What the worker process sends back: metadata and thumbnails, or why it could not."""

    metadata: AssetMetadata | None = None
    thumbnail: bytes | None = None
    preview: bytes | None = None
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


def extract(path: str) -> Extracted:
    """Runs in a worker process: everything CPU-bound about one file."""
    before = signature(path)
    result = _extract(path)
    return msgspec.structs.replace(
        result,
        modified=before[1] / 1e9 if before is not None else None,
        changed=before is not None and signature(path) != before,
    )


def _extract(path: str) -> Extracted:
    try:
        meta = read_metadata(path)
    except UnreadableFile as e:
        return Extracted(failure=f"unreadable file: {e}")
    except FileNotFoundError:
        return Extracted(failure="the file disappeared before it could be read")
    except OSError as e:
        return Extracted(failure=f"cannot read file: {e.strerror or e}")
    sidecar = find_sidecar(path)
    if sidecar is not None:
        try:
            meta = apply_sidecar(meta, sidecar)
        except OSError as e:
            log.warning("metadata: sidecar %s unreadable: %s", sidecar, e)
    try:
        thumbs = make_thumbnails(path)
    except UnreadableFile as e:
        return Extracted(metadata=meta, thumbnail_failure=f"no thumbnail: {e}")
    except OSError as e:
        return Extracted(metadata=meta, thumbnail_failure=f"no thumbnail: {e.strerror or e}")
    return Extracted(metadata=meta, thumbnail=thumbs.thumbnail, preview=thumbs.preview)


def thumbnail_keys(asset_id: uuid.UUID) -> tuple[str, str]:
    """Object-store names of an asset's thumbnail and preview."""
    return f"{asset_id}/thumbnail.jpeg", f"{asset_id}/preview.jpeg"


class MetadataWorker:
    """Handles FileDiscovered / FileChanged / AssetUploaded for any number of replicas."""

    def __init__(self, nc: Client, settings: Settings, pool: Executor) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.settings = settings
        self.bus = EventBus(nc, settings.nats)
        self.pool = pool
        self._thumbs: ObjectStore | None = None

    async def thumbs(self) -> ObjectStore:
        if self._thumbs is None:
            self._thumbs = await self.js.object_store(self.settings.nats.name("thumbs"))
        return self._thumbs

    async def handle(self, event: ev.BaseEvent, *, last_try: bool = False) -> None:
        """Read the file and record what was read.

        Raises:
            NotSettled: the file changed while it was read, or failed to read and changed less
                than the settle time ago (never for uploads, which are complete, nor on the
                last try).
        """
        if not isinstance(event, ev.FileDiscovered | ev.FileChanged | ev.AssetUploaded):
            return
        path = event.path
        if isinstance(event, ev.AssetUploaded) and not os.path.isabs(path):
            path = str(self.settings.upload_path / path)
        loop = asyncio.get_running_loop()
        result: Extracted = await loop.run_in_executor(self.pool, extract, path)
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
        if result.thumbnail is not None and result.preview is not None:
            thumb_key, preview_key = thumbnail_keys(event.stream_id)
            store = await self.thumbs()
            await store.put(thumb_key, result.thumbnail)
            await store.put(preview_key, result.preview)
        await self.bus.publish(
            ev.MetadataExtracted(
                stream_id=event.stream_id,
                event_id=event_id,
                metadata=result.metadata,
                thumbnail_key=thumb_key,
                preview_key=preview_key,
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
