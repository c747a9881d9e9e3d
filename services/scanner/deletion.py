"""Finishing a library's deletion: its renditions removed, then LibraryDeleted recorded."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

from nats.js.errors import NotFoundError, ObjectNotFoundError

from shared import events as ev

if TYPE_CHECKING:
    from services.scanner.handlers import Scanner

log = logging.getLogger(__name__)


async def finish_deletion(s: Scanner, library_id: uuid.UUID) -> None:
    """Remove a deleted library's thumbnails in batches, then record LibraryDeleted."""
    if s.thumbs is None:
        s.thumbs = await s.js.object_store(s.settings.nats.name("thumbs"))
    keys = await s.repo.rendition_keys(library_id)
    for row in keys:
        for key in row:
            if key:
                with contextlib.suppress(ObjectNotFoundError, NotFoundError):
                    await s.thumbs.delete(key)  # already gone is fine
    await s.bus.publish(
        ev.LibraryDeleted(stream_id=library_id, event_id=uuid.uuid5(library_id, "deleted"))
    )
    s.forget(library_id)
    log.info("library %s deleted (%d thumbnails removed)", library_id, len(keys))
