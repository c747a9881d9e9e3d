"""Reading the dead letters and passed-over events back: what the API and `shoebox` show."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DeadLetter", "failure_counts", "list_dead_letters"]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One message a consumer gave up on (a `dead_letters` row), camelCase on the wire as the
    API's DTOs."""

    id: uuid.UUID
    consumer: str
    stream: str
    subject: str
    stream_seq: int
    deliveries: int
    error: str
    payload: str
    failed_at: datetime


_LIST = text(
    "SELECT id, consumer, stream, subject, stream_seq, deliveries, error, payload, failed_at "
    "FROM dead_letters WHERE (CAST(:consumer AS text) IS NULL OR consumer = :consumer) "
    "ORDER BY failed_at DESC, id LIMIT :limit"
)
_COUNTS = text(
    "SELECT (SELECT count(*) FROM dead_letters) AS dead, "
    "(SELECT count(*) FROM projection_failures) AS passed_over"
)


async def list_dead_letters(
    engine: AsyncEngine, *, consumer: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """The newest dead letters first, of one consumer or of all."""
    async with engine.connect() as conn:
        rows = await conn.execute(_LIST, {"consumer": consumer, "limit": limit})
        return [DeadLetter(**r._asdict()) for r in rows]


async def failure_counts(engine: AsyncEngine) -> tuple[int, int]:
    """(dead letters, events the projector passed over)."""
    async with engine.connect() as conn:
        row = (await conn.execute(_COUNTS)).one()
    return int(row.dead), int(row.passed_over)
