"""Albums: read-model queries behind AlbumResponseDto, and the commands that record album events.

An album is its own aggregate (`events.album.<id>`); every change expects the album's
`last_seq`. Only the owner sees and changes an album (Shoebox does not share albums yet). Any
asset the owner owns can be added, external ones included; an asset that leaves Shoebox leaves
its albums too (the album_assets foreign key cascades).

The album thumbnail is the one set with PATCH while that asset is still in the album, otherwise
the album's newest asset — worked out on read, so removing an asset needs no extra event.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from msgspec import UNSET, UnsetType
from sqlalchemy import text

from services.api import schemas as s
from services.api.assets import ASSET_SELECT, NOT_DELETING, asset_dto
from services.api.commands import publish_chain
from services.api.schemas import iso
from shared import events as ev
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.api.auth import AuthUser
    from services.api.context import Context

_MEMBERS = (
    "FROM album_assets aa JOIN assets a ON a.id = aa.asset_id "
    f"WHERE aa.album_id = al.id AND {NOT_DELETING} AND a.deleted_at IS NULL"
)

ALBUM_SELECT = f"""
SELECT al.*, u.email AS owner_email, u.name AS owner_name, u.created_at AS owner_created_at,
       st.asset_count, st.start_date, st.end_date, st.last_modified,
       coalesce(
         (SELECT aa.asset_id FROM album_assets aa
           WHERE aa.album_id = al.id AND aa.asset_id = al.thumbnail_asset_id),
         (SELECT a.id {_MEMBERS} ORDER BY a.local_date_time DESC, a.id LIMIT 1)
       ) AS thumbnail
FROM albums al
JOIN users u ON u.id = al.owner_id
LEFT JOIN LATERAL (
  SELECT count(*) AS asset_count, min(a.local_date_time) AS start_date,
         max(a.local_date_time) AS end_date, max(a.updated_at) AS last_modified {_MEMBERS}
) st ON true
"""


def album_dto(row: Row[Any], assets: list[s.AssetResponseDto] | None = None) -> s.AlbumResponseDto:
    owner = s.UserResponseDto(
        id=str(row.owner_id),
        email=row.owner_email,
        name=row.owner_name,
        profile_changed_at=iso(row.owner_created_at),
    )
    dto = s.AlbumResponseDto(
        id=str(row.id),
        album_name=row.name,
        description=row.description or "",
        album_thumbnail_asset_id=str(row.thumbnail) if row.thumbnail else None,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        owner_id=str(row.owner_id),
        owner=owner,
        album_users=[s.AlbumUserResponseDto(user=owner, role="owner")],
        shared=False,
        has_shared_link=False,
        asset_count=int(row.asset_count or 0),
        assets=assets or [],
    )
    if row.asset_count:
        dto.start_date = iso(row.start_date) or UNSET
        dto.end_date = iso(row.end_date) or UNSET
        dto.last_modified_asset_timestamp = iso(row.last_modified) or UNSET
    return dto


async def list_albums(
    conn: AsyncConnection,
    auth: AuthUser,
    *,
    asset_id: uuid.UUID | None,
    shared: bool | None,
    name: str | None,
    album_id: uuid.UUID | None,
) -> list[s.AlbumResponseDto]:
    """The caller's albums, without their assets."""
    if shared:
        return []  # nobody shares albums with anybody in Shoebox (yet)
    sql = ALBUM_SELECT + " WHERE al.owner_id = :owner"
    params: dict[str, Any] = {"owner": auth.id}
    if asset_id is not None:
        sql += " AND al.id IN (SELECT album_id FROM album_assets WHERE asset_id = :asset)"
        params["asset"] = asset_id
    if name is not None:
        sql += " AND al.name = :name"
        params["name"] = name
    if album_id is not None:
        sql += " AND al.id = :album"
        params["album"] = album_id
    rows = (await conn.execute(text(sql + " ORDER BY al.created_at DESC, al.id"), params)).all()
    return [album_dto(r) for r in rows]


async def get_album_row(
    conn: AsyncConnection, auth: AuthUser, album_id: uuid.UUID, permission: str
) -> Row[Any]:
    """The album if the caller owns it; Immich's 400 `Not found or no <permission> access`
    (the route has checked the API key's permission)."""
    row = (await conn.execute(text(ALBUM_SELECT + " WHERE al.id = :id"), {"id": album_id})).first()
    if row is None or row.owner_id != auth.id:
        raise InvalidInput(f"Not found or no {permission} access")
    return row


async def get_album(
    conn: AsyncConnection, auth: AuthUser, album_id: uuid.UUID, *, without_assets: bool = False
) -> s.AlbumResponseDto:
    row = await get_album_row(conn, auth, album_id, "album.read")
    assets = None
    if not without_assets:
        rows = (
            await conn.execute(
                text(
                    f"{ASSET_SELECT} WHERE a.id IN (SELECT asset_id FROM album_assets "
                    f"WHERE album_id = :id) AND {NOT_DELETING} AND a.deleted_at IS NULL "
                    "ORDER BY a.file_created_at DESC, a.id"
                ),
                {"id": album_id},
            )
        ).all()
        assets = [asset_dto(r) for r in rows]
    return album_dto(row, assets)


async def album_statistics(conn: AsyncConnection, auth: AuthUser) -> s.AlbumStatisticsResponseDto:
    owned = (
        await conn.execute(text("SELECT count(*) FROM albums WHERE owner_id = :o"), {"o": auth.id})
    ).scalar() or 0
    return s.AlbumStatisticsResponseDto(owned=owned, shared=0, not_shared=owned)


# --- commands -------------------------------------------------------------------------------


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


async def create_album(ctx: Context, auth: AuthUser, dto: s.CreateAlbumDto) -> uuid.UUID:
    """A new album; asset ids the caller may not use are left out, as Immich does."""
    if dto.album_users:
        raise InvalidInput("Shoebox does not share albums: albumUsers must be empty")
    wanted = list(dict.fromkeys(dto.asset_ids))
    async with ctx.engine.connect() as conn:
        allowed = await _addable(conn, auth, wanted)
    album_id = uuid.uuid4()
    events: list[ev.BaseEvent] = [
        ev.AlbumCreated(
            stream_id=album_id,
            owner_id=auth.id,
            name=dto.album_name,
            description=dto.description or "",
        )
    ]
    members = [a for a in wanted if a in allowed]
    if members:
        events.append(ev.AssetsAddedToAlbum(stream_id=album_id, asset_ids=members))
    await ctx.settle(await publish_chain(ctx, events, expected=0))
    return album_id


async def update_album(
    ctx: Context, auth: AuthUser, album_id: uuid.UUID, dto: s.UpdateAlbumDto
) -> None:
    """Name, description and thumbnail; `order` and `isActivityEnabled` are accepted and kept
    at their only values (desc, enabled) since no event records them."""
    async with ctx.engine.connect() as conn:
        row = await get_album_row(conn, auth, album_id, "album.update")
        thumb = None
        if not isinstance(dto.album_thumbnail_asset_id, UnsetType):
            thumb = dto.album_thumbnail_asset_id
            member = (
                await conn.execute(
                    text("SELECT 1 FROM album_assets WHERE album_id = :al AND asset_id = :a"),
                    {"al": album_id, "a": thumb},
                )
            ).first()
            if member is None:
                raise InvalidInput("Invalid album thumbnail: the asset is not in the album")
    name = (
        None
        if isinstance(dto.album_name, UnsetType) or dto.album_name == row.name
        else (dto.album_name)
    )
    description = None
    if not isinstance(dto.description, UnsetType):
        wanted = dto.description or ""
        description = wanted if wanted != row.description else None
    if thumb == row.thumbnail_asset_id:
        thumb = None
    if name is None and description is None and thumb is None:
        return
    await ctx.settle(
        await publish_chain(
            ctx,
            [
                ev.AlbumUpdated(
                    stream_id=album_id, name=name, description=description, thumbnail_asset_id=thumb
                )
            ],
            expected=row.last_seq,
        )
    )


async def delete_album(ctx: Context, auth: AuthUser, album_id: uuid.UUID) -> None:
    async with ctx.engine.connect() as conn:
        row = await get_album_row(conn, auth, album_id, "album.delete")
    await ctx.settle(
        await publish_chain(ctx, [ev.AlbumDeleted(stream_id=album_id)], expected=row.last_seq)
    )


async def _members(conn: AsyncConnection, album_id: uuid.UUID) -> set[uuid.UUID]:
    rows = (
        await conn.execute(
            text("SELECT asset_id FROM album_assets WHERE album_id = :id"), {"id": album_id}
        )
    ).all()
    return {r.asset_id for r in rows}


async def add_assets(
    ctx: Context, auth: AuthUser, album_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[s.BulkIdResponseDto]:
    """Immich's per-id answer: success, or duplicate (already in) / no_permission."""
    async with ctx.engine.connect() as conn:
        row = await get_album_row(conn, auth, album_id, "albumAsset.create")
        present = await _members(conn, album_id)
        allowed = await _addable(conn, auth, list(set(ids)))
    results: list[s.BulkIdResponseDto] = []
    added: list[uuid.UUID] = []
    for asset_id in ids:
        if asset_id in present:
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=False, error="duplicate"))
        elif asset_id not in allowed:
            results.append(
                s.BulkIdResponseDto(id=str(asset_id), success=False, error="no_permission")
            )
        else:
            present.add(asset_id)
            added.append(asset_id)
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=True))
    if added:
        await ctx.settle(
            await publish_chain(
                ctx,
                [ev.AssetsAddedToAlbum(stream_id=album_id, asset_ids=added)],
                expected=row.last_seq,
            )
        )
    return results


async def remove_assets(
    ctx: Context, auth: AuthUser, album_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[s.BulkIdResponseDto]:
    """Immich's per-id answer: success, or not_found (not in the album)."""
    async with ctx.engine.connect() as conn:
        row = await get_album_row(conn, auth, album_id, "albumAsset.delete")
        present = await _members(conn, album_id)
    results: list[s.BulkIdResponseDto] = []
    removed: list[uuid.UUID] = []
    for asset_id in ids:
        if asset_id in present:
            present.discard(asset_id)
            removed.append(asset_id)
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=True))
        else:
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=False, error="not_found"))
    if removed:
        await ctx.settle(
            await publish_chain(
                ctx,
                [ev.AssetsRemovedFromAlbum(stream_id=album_id, asset_ids=removed)],
                expected=row.last_seq,
            )
        )
    return results
