"""An asset's media: its original read beneath the fence, its renditions from the object store."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nats.js.errors import NotFoundError, ObjectNotFoundError
from sqlalchemy import text

from shared.errors import Forbidden, InvalidInput, NotFound
from shared.fence import Escape, Fence, NotRegular, Opened, chunks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.js.object_store import ObjectStore
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from shared.settings import Settings

log = logging.getLogger(__name__)

CHUNK = 1 << 20


async def _file_chunks(opened: Opened) -> AsyncIterator[bytes]:
    parts = chunks(opened, CHUNK)
    try:
        while data := await asyncio.to_thread(next, parts, b""):
            yield data
    finally:
        opened.close()


def content_disposition(kind: str, filename: str) -> str:
    """`inline; filename="a.jpg"; filename*=UTF-8''a.jpg` (ASCII fallback + RFC 5987 form)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


MEDIA_HEADERS = {"Cache-Control": "private, max-age=86400, no-transform"}
# A thumbnail asked for by its version (`?c=`, as the web app's pages do) is the same bytes for
# as long as that URL exists: a new rendition comes with a new asset state, so a new URL.
IMMUTABLE_HEADERS = {"Cache-Control": "private, max-age=31536000, immutable, no-transform"}


def thumb_version(updated_at: str | None) -> str:
    """The version of an asset's renditions in its URLs: from the asset's last change (a new
    thumbnail is written before the MetadataExtracted that changes it), the same after a
    replay (the time is the event's)."""
    return hashlib.blake2s((updated_at or "").encode(), digest_size=6).hexdigest()


def thumb_url(asset_id: object, updated_at: str | None, size: str = "thumbnail") -> str:
    query = "" if size == "thumbnail" else f"size={size}&"
    return f"/api/assets/{asset_id}/thumbnail?{query}c={thumb_version(updated_at)}"


async def open_original(
    conn: AsyncConnection, settings: Settings, row: Row[Any]
) -> tuple[AsyncIterator[bytes], int]:
    """The original file as chunks, and its size.

    The file must lie inside the folder it may come from: the upload location for uploads, the
    owner's external path for external assets (resolved again now, so a symlink swapped in
    after the scan cannot lead outside). An offline external asset is not read at all."""
    if row.library_type == "EXTERNAL":
        if row.is_offline:
            raise InvalidInput(
                f"Asset is offline ({row.offline_reason or 'file missing'}): its original file "
                "cannot be read until it is back"
            )
        owner = (
            await conn.execute(
                text("SELECT external_path FROM users WHERE id = :id"), {"id": row.owner_id}
            )
        ).first()
        if owner is None or not owner.external_path:
            raise Forbidden("The owner of this asset has no external path any more")
        root, path = owner.external_path, row.original_path
    else:
        root = str(settings.upload_path)
        path = str(original_file(settings.upload_path, row.original_path))
    upload = str(settings.upload_path) if row.library_type == "EXTERNAL" else None
    # Opened beneath the root, one component at a time (in a thread: a hung mount must not
    # stall the loop): a name swapped for a symlink after any earlier check is met by the
    # kernel, never followed (shared/fence.py).
    try:
        opened = await asyncio.to_thread(_open_original, root, path, upload)
    except Escape as e:
        raise Forbidden("The original file lies outside the folder it may be read from") from e
    except (FileNotFoundError, NotADirectoryError, NotRegular) as e:
        raise NotFound("Asset media not found: the original file is missing") from e
    except OSError as e:
        reason = e.strerror or e
        raise NotFound(f"Asset media not found: the original file cannot be read ({reason})") from e
    return _file_chunks(opened), opened.st.st_size


def _open_original(root: str, path: str, upload_root: str | None) -> Opened:
    """Blocking: the original, opened beneath `root`, and not inside `upload_root`.

    An external library never reads the upload folder, even when the owner's external path
    holds it (assets imported before the scanner skipped it stay refused here)."""
    opened = Fence.of(root).open_file(path)
    if upload_root is not None and Fence.of(upload_root).contains(opened.real):
        opened.close()
        raise Forbidden("The file of this external asset is in the upload folder; not readable")
    return opened


class ThumbnailMissing(NotFound):
    """Raised when an asset has no thumbnail (yet) in the object store."""


async def open_thumbnail(
    store: ObjectStore | None, key: str | None
) -> tuple[AsyncIterator[bytes], int]:
    """An object of the thumbnail store as its chunks (never the whole object in memory)."""
    if store is None or key is None:
        raise ThumbnailMissing("Asset media not found: no thumbnail has been generated yet")
    try:
        info = await store.get_info(key)
    except (ObjectNotFoundError, NotFoundError) as e:
        raise ThumbnailMissing("Asset media not found: the thumbnail is missing") from e
    return _object_chunks(store, info), int(info.size or 0)


async def _object_chunks(store: ObjectStore, info: Any) -> AsyncIterator[bytes]:
    """nats-py's ObjectStore.get, chunk by chunk: an ordered consumer on the chunk subject."""
    if not info.size:
        return
    # nats-py has no streaming read, so this is its ObjectStore.get without the buffer.
    sub = await store._js.subscribe(f"$O.{store._name}.C.{info.nuid}", ordered_consumer=True)
    digest = hashlib.sha256()
    try:
        async for msg in sub.messages:
            digest.update(msg.data)
            yield msg.data
            if msg.metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    encoded = (info.digest or "").partition("=")[2].rstrip("=")
    with contextlib.suppress(ValueError):
        if digest.digest() != base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)):
            log.warning("thumbnail %s: digest mismatch", info.name)


def original_file(upload_root: Path, path: str) -> Path:
    """The file of an upload asset (its recorded path is relative to the upload location)."""
    return Path(path) if os.path.isabs(path) else upload_root / path
