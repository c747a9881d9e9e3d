"""Handlers of albums: load the album (and which assets the caller may add), decide
(decide/albums.py), publish, wait."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from msgspec import UnsetType
from sqlalchemy import text

from services.api.albums import get_album_row
from services.api.assets import NOT_DELETING
from services.api.commands.publish import carry_out
from services.api.decide import albums as decide

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.api import schemas as s
    from services.api.auth import AuthUser
    from services.api.context import Context


async def _addable(conn: AsyncConnection, auth: AuthUser, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these assets the caller may put in an album: their own, in a live library."""
    if not ids:
        return set()
    rows = (
        await conn.execute(
            text(
                "SELECT a.id FROM assets a WHERE a.id = ANY(:ids) AND a.owner_id = :o "
                f"AND {NOT_DELETING}"
            ),
            {"ids": ids, "o": auth.id},
        )
    ).all()
    return {r.id for r in rows}


async def _album(
    conn: AsyncConnection,
    auth: AuthUser,
    album_id: uuid.UUID,
    permission: str,
    asking: list[uuid.UUID] | None = None,
) -> decide.AlbumState:
    """The caller's album (Immich's 400 for anyone else's) with its members among `asking`
    (None: all of them)."""
    row: Any = await get_album_row(conn, auth, album_id, permission)
    sql = "SELECT asset_id FROM album_assets WHERE album_id = :id"
    params: dict[str, Any] = {"id": album_id}
    if asking is not None:
        sql += " AND asset_id = ANY(:ids)"
        params["ids"] = asking
    members = (await conn.execute(text(sql), params)).all() if asking != [] else []
    return decide.AlbumState(
        row.id,
        row.owner_id,
        row.name,
        row.description,
        row.thumbnail_asset_id,
        row.last_seq,
        frozenset(r.asset_id for r in members),
    )


async def create_album(ctx: Context, auth: AuthUser, dto: s.CreateAlbumDto) -> uuid.UUID:
    """A new album; asset ids the caller may not use are left out, as Immich does."""
    async with ctx.engine.connect() as conn:
        addable = await _addable(conn, auth, list(dict.fromkeys(dto.asset_ids)))
    album_id = uuid.uuid4()
    await carry_out(ctx, decide.create_album(auth, dto, album_id, addable))
    return album_id


async def update_album(
    ctx: Context, auth: AuthUser, album_id: uuid.UUID, dto: s.UpdateAlbumDto
) -> None:
    """Name, description and thumbnail."""
    async with ctx.engine.connect() as conn:
        thumb = dto.album_thumbnail_asset_id
        asking = [] if isinstance(thumb, UnsetType) else [thumb]
        album = await _album(conn, auth, album_id, "album.update", asking)
    await carry_out(ctx, decide.update_album(album, dto))


async def delete_album(ctx: Context, auth: AuthUser, album_id: uuid.UUID) -> None:
    """Delete the caller's album (its assets stay)."""
    async with ctx.engine.connect() as conn:
        album = await _album(conn, auth, album_id, "album.delete", [])
    await carry_out(ctx, decide.delete_album(album))


async def add_assets(
    ctx: Context, auth: AuthUser, album_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[s.BulkIdResponseDto]:
    """Immich's per-id answer: success, or duplicate (already in) / no_permission."""
    async with ctx.engine.connect() as conn:
        album = await _album(conn, auth, album_id, "albumAsset.create")
        addable = await _addable(conn, auth, list(set(ids)))
    change = decide.add_assets(album, ids, addable)
    await carry_out(ctx, change.write)
    return change.results


async def remove_assets(
    ctx: Context, auth: AuthUser, album_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[s.BulkIdResponseDto]:
    """Immich's per-id answer: success, or not_found (not in the album)."""
    async with ctx.engine.connect() as conn:
        album = await _album(conn, auth, album_id, "albumAsset.delete")
    change = decide.remove_assets(album, ids)
    await carry_out(ctx, change.write)
    return change.results
