"""The one writer of the `thumbs` object store: puts an asset's renditions, deletes them again.

Every object carries the EVENTS stream sequence of the asset event whose reading made it
(`Shoebox-Seq`). The stream's sequence orders every event of every subject, so "made before
this removal" is a comparison of two numbers, not of two clocks:

- an asset removed at sequence S loses the renditions made from events before S, and keeps
  those of a new life (a re-discovered file or a re-uploaded photo reuses the asset id, and
  its FileDiscovered/AssetUploaded comes after S);
- a reading never replaces renditions made from a later event (a redelivered FileChanged
  that was overtaken);
- a removal seen twice (redelivery, a consumer replayed from the start) finds nothing older
  to delete, or nothing at all, and succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Final

from nats.js import api
from nats.js.errors import NotFoundError, ObjectNotFoundError

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.object_store import ObjectStore

    from shared.settings import NatsSettings

__all__ = ["SEQ_HEADER", "RenditionStore", "rendition_keys"]

log = logging.getLogger(__name__)

SEQ_HEADER: Final = "Shoebox-Seq"


def rendition_keys(asset_id: uuid.UUID) -> tuple[str, str]:
    """Object-store names of an asset's thumbnail and preview."""
    return f"{asset_id}/thumbnail.jpeg", f"{asset_id}/preview.jpeg"


def _made_at(info: api.ObjectInfo) -> int:
    """The event sequence an object was made from; 0 for one stored before they were marked."""
    values = (info.headers or {}).get(SEQ_HEADER)
    if isinstance(values, list):
        values = values[0] if values else None
    try:
        return int(values) if values is not None else 0
    except (TypeError, ValueError):
        return 0


class RenditionStore:
    """The `thumbs` bucket as its owner, the metadata service, uses it."""

    def __init__(self, js: JetStreamContext, nats: NatsSettings) -> None:
        self._js = js
        self._name = nats.name("thumbs")
        self._store: ObjectStore | None = None

    async def store(self) -> ObjectStore:
        if self._store is None:
            self._store = await self._js.object_store(self._name)
        return self._store

    async def _made(self, key: str) -> int | None:
        """The sequence `key` was made from; None when there is no such object."""
        store = await self.store()
        try:
            return _made_at(await store.get_info(key))
        except (ObjectNotFoundError, NotFoundError):
            return None

    async def put(
        self, asset_id: uuid.UUID, seq: int, thumbnail: bytes, preview: bytes
    ) -> tuple[str, str] | None:
        """Store the renditions read from the event at `seq`; their keys, or None when the
        renditions there were made from a later event (and are left as they are)."""
        keys = rendition_keys(asset_id)
        made = await self._made(keys[0])
        if made is not None and made > seq:
            log.info("renditions of asset %s are from event %d, newer than %d", asset_id, made, seq)
            return None
        store = await self.store()
        headers = {SEQ_HEADER: [str(seq)]}
        for key, data in zip(keys, (thumbnail, preview), strict=True):
            await store.put(key, data, meta=api.ObjectMeta(name=key, headers=headers))
        return keys

    async def remove(self, asset_id: uuid.UUID, removed_at: int) -> int:
        """Delete the asset's renditions made from events before `removed_at` (its removal's
        sequence); those of a later life stay. Returns how many objects were deleted."""
        deleted = 0
        for key in rendition_keys(asset_id):
            made = await self._made(key)
            if made is None or made >= removed_at:
                continue
            if await self._delete(key):
                deleted += 1
        return deleted

    async def remove_all(self, asset_id: uuid.UUID) -> int:
        """Delete the asset's renditions whatever made them (its library is gone for good:
        library ids are never reused, so no later life can own them)."""
        deleted = 0
        for key in rendition_keys(asset_id):
            if await self._delete(key):
                deleted += 1
        return deleted

    async def _delete(self, key: str) -> bool:
        store = await self.store()
        with contextlib.suppress(ObjectNotFoundError, NotFoundError):  # gone already is fine
            await store.delete(key)
            return True
        return False
