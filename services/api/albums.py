"""Albums: the read-model queries behind AlbumResponseDto (commands: commands/albums.py).

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

from msgspec import UNSET
from sqlalchemy import text

from services.api import schemas as s
from services.api.assets import ASSET_SELECT, NOT_DELETING, asset_dto
from services.api.decide import accepted
from services.api.decide import albums as decide
from services.api.schemas import iso

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.api.auth import AuthUser

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
    accepted(decide.owned(auth, None if row is None else row.owner_id, permission))
    assert row is not None
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
