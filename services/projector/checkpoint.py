"""The projector's checkpoint: the last stream sequence whose effect is in the read models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

from shared.schema import PROJECTION_VERSION

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

NAME = "read_models"

_READ = text("SELECT seq, version FROM projection_checkpoint WHERE name = :name")
ADVANCE = text(
    "INSERT INTO projection_checkpoint (name, seq, version) VALUES (:name, :seq, :version) "
    "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, version = excluded.version"
)


async def read_checkpoint(engine: AsyncEngine) -> tuple[int, int]:
    """(seq, projection version) or (0, current version) for an empty database."""
    async with engine.connect() as conn:
        row = (await conn.execute(_READ, {"name": NAME})).first()
    return (int(row.seq), int(row.version)) if row else (0, PROJECTION_VERSION)


def advance_params(seq: int) -> dict[str, object]:
    """Parameters of ADVANCE: move the checkpoint inside the caller's transaction."""
    return {"name": NAME, "seq": seq, "version": PROJECTION_VERSION}
