"""Asset rows -> AssetResponseDto, and asset reads: search, detail, statistics (media: media.py)."""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from msgspec import UNSET
from sqlalchemy import text

from services.api import schemas as s
from services.api.schemas import iso
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.api.auth import AuthUser

log = logging.getLogger(__name__)


def _checksum(row: Row[Any]) -> str:
    """Base64 SHA-1: of the content once read; before that, Immich's `path:` hash."""
    if row.checksum:
        return base64.b64encode(bytes.fromhex(row.checksum)).decode()
    return base64.b64encode(hashlib.sha1(f"path:{row.original_path}".encode()).digest()).decode()


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "0:00:00.00000"
    h, rem = divmod(seconds, 3600)
    m, sec = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{sec:09.6f}"


def exif_dto(row: Row[Any]) -> s.ExifResponseDto:
    return s.ExifResponseDto(
        make=row.make,
        model=row.model,
        exif_image_width=row.width,
        exif_image_height=row.height,
        file_size_in_byte=row.file_size,
        orientation=str(row.orientation) if row.orientation else None,
        date_time_original=iso(row.date_time_original),
        modify_date=iso(row.file_modified_at),
        time_zone=row.time_zone,
        lens_model=row.lens_model,
        f_number=row.f_number,
        focal_length=row.focal_length,
        iso=row.iso,
        exposure_time=row.exposure_time,
        latitude=row.latitude,
        longitude=row.longitude,
        description=row.description if row.user_description is None else row.user_description,
        rating=row.rating or None,  # 0: unrated, which Immich answers as null
    )


def thumbhash_b64(value: bytes | None) -> str | None:
    """The stored thumbhash as Immich answers it: base64 of its bytes."""
    return base64.b64encode(value).decode("ascii") if value else None


def asset_dto(row: Row[Any], *, with_exif: bool = True) -> s.AssetResponseDto:
    external = row.library_type == "EXTERNAL"
    return s.AssetResponseDto(
        id=str(row.id),
        device_asset_id=row.device_asset_id,
        owner_id=str(row.owner_id),
        device_id=row.device_id,
        library_id=str(row.library_id) if external else None,
        type=row.type,
        original_path=row.original_path,
        original_file_name=row.original_file_name,
        original_mime_type=row.mime_type,
        thumbhash=thumbhash_b64(row.thumbhash),
        file_created_at=iso(row.file_created_at) or "",
        file_modified_at=iso(row.file_modified_at) or "",
        local_date_time=iso(row.local_date_time) or "",
        updated_at=iso(row.updated_at) or "",
        created_at=iso(row.created_at) or "",
        is_favorite=row.is_favorite,
        is_archived=row.visibility == "archive",
        is_trashed=row.deleted_at is not None,
        is_offline=row.is_offline,
        visibility=row.visibility,
        duration=_duration(row.duration_seconds),
        checksum=_checksum(row),
        has_metadata=row.metadata_status == "done",
        is_external=external,
        is_read_only=external,
        resized=row.thumbnail_key is not None,
        exif_info=exif_dto(row) if with_exif else UNSET,
        offline_reason=row.offline_reason,
        metadata_status=row.metadata_status,
        metadata_error=row.metadata_error,
    )


ASSET_SELECT = (
    "SELECT a.*, l.type AS library_type FROM assets a JOIN libraries l ON l.id = a.library_id"
)


async def get_asset(conn: AsyncConnection, auth: AuthUser, asset_id: uuid.UUID) -> Row[Any]:
    """The asset if the caller may see it; Immich answers 400 for both unknown and foreign."""
    row = (await conn.execute(text(ASSET_SELECT + " WHERE a.id = :id"), {"id": asset_id})).first()
    if row is None or (row.owner_id != auth.id and not auth.is_admin):
        raise InvalidInput("Not found or no asset.read access")
    return row


def _like(value: str | None) -> str | None:
    return None if value is None else f"%{value}%"


async def search(
    conn: AsyncConnection, auth: AuthUser, dto: s.MetadataSearchDto
) -> s.SearchResponseDto:
    where = ["NOT l.deleting"]
    params: dict[str, Any] = {}
    if dto.library_id is not None and auth.is_admin:
        pass  # an admin may list any library's assets
    else:
        where.append("a.owner_id = :owner")
        params["owner"] = auth.id
    filters: list[tuple[str, str, Any]] = [
        ("library_id", "a.library_id = :library_id", dto.library_id),
        ("is_offline", "a.is_offline = :is_offline", dto.is_offline),
        ("type", "a.type = :type", dto.type),
        ("id", "a.id = :id", dto.id),
        ("device_id", "a.device_id = :device_id", dto.device_id),
        ("device_asset_id", "a.device_asset_id = :device_asset_id", dto.device_asset_id),
        ("is_favorite", "a.is_favorite = :is_favorite", dto.is_favorite),
        ("taken_after", "a.file_created_at >= :taken_after", dto.taken_after),
        ("taken_before", "a.file_created_at <= :taken_before", dto.taken_before),
        ("visibility", "a.visibility = :visibility", dto.visibility),
        ("trashed_after", "a.deleted_at >= :trashed_after", dto.trashed_after),
        ("trashed_before", "a.deleted_at <= :trashed_before", dto.trashed_before),
        ("created_after", "a.created_at >= :created_after", dto.created_after),
        ("created_before", "a.created_at <= :created_before", dto.created_before),
        ("updated_after", "a.updated_at >= :updated_after", dto.updated_after),
        ("updated_before", "a.updated_at <= :updated_before", dto.updated_before),
        # Immich: ILIKE '%…%' on the name, the path and the description.
        (
            "original_file_name",
            "a.original_file_name ILIKE :original_file_name",
            _like(dto.original_file_name),
        ),
        ("original_path", "a.original_path ILIKE :original_path", _like(dto.original_path)),
        (
            "description",
            "coalesce(a.user_description, a.description) ILIKE :description",
            _like(dto.description),
        ),
    ]
    if dto.album_ids:
        # In every one of these albums (Immich's albumIds), each of them the caller's.
        where.append(
            "a.id IN (SELECT aa.asset_id FROM album_assets aa JOIN albums al "
            "ON al.id = aa.album_id AND al.owner_id = :album_owner "
            "WHERE aa.album_id = ANY(:album_ids) GROUP BY aa.asset_id "
            "HAVING count(DISTINCT aa.album_id) = :album_count)"
        )
        albums = list(dict.fromkeys(dto.album_ids))
        params.update(album_ids=albums, album_count=len(albums), album_owner=auth.id)
    if dto.is_archived is not None:
        where.append("a.visibility = :archived")
        params["archived"] = "archive" if dto.is_archived else "timeline"
    # Trashed assets are found only when asked for, as in Immich.
    if not dto.with_deleted and dto.trashed_after is None and dto.trashed_before is None:
        where.append("a.deleted_at IS NULL")
    for name, clause, value in filters:
        if value is not None:
            where.append(clause)
            params[name] = value
    # Exif: equal, or IS NULL for `null`. Shoebox does no reverse geocoding, so every asset's
    # city, state and country is null.
    for name, column in (
        ("make", "a.make"),
        ("model", "a.model"),
        ("lens_model", "a.lens_model"),
        ("city", None),
        ("state", None),
        ("country", None),
    ):
        value = getattr(dto, name)
        if value is UNSET:
            continue
        if column is None:
            where.append("TRUE" if value is None else "FALSE")
        elif value is None:
            where.append(f"{column} IS NULL")
        else:
            where.append(f"{column} = :{name}")
            params[name] = value
    if dto.is_not_in_album:
        where.append("NOT EXISTS (SELECT 1 FROM album_assets aa WHERE aa.asset_id = a.id)")
    if dto.checksum:
        try:
            params["checksum"] = (
                base64.b64decode(dto.checksum).hex()
                if len(dto.checksum) == 28
                else dto.checksum.lower()
            )
        except ValueError as e:
            raise InvalidInput("checksum must be base64 or hex SHA-1") from e
        where.append("a.checksum = :checksum")
    size = max(1, min(dto.size, 1000))
    page = max(1, dto.page)
    sql_where = " WHERE " + " AND ".join(where)
    total = int(
        (
            await conn.execute(
                text(
                    "SELECT count(*) FROM assets a JOIN libraries l ON l.id = a.library_id"
                    + sql_where
                ),
                params,
            )
        ).scalar()
        or 0
    )
    order = "ASC" if dto.order == "asc" else "DESC"
    rows = (
        await conn.execute(
            text(
                f"{ASSET_SELECT}{sql_where} ORDER BY a.file_created_at {order}, a.id "
                "LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": size, "offset": (page - 1) * size},
        )
    ).all()
    items = [asset_dto(r, with_exif=dto.with_exif) for r in rows]
    next_page = str(page + 1) if page * size < total else None
    return s.SearchResponseDto(
        albums=s.SearchAlbumResponseDto(),
        assets=s.SearchAssetResponseDto(
            total=total, count=len(items), items=items, next_page=next_page
        ),
    )


# --- permissions ----------------------------------------------------------------------------


NOT_DELETING = "a.library_id NOT IN (SELECT id FROM libraries WHERE deleting)"


# --- statistics and upload checks ---------------------------------------------------------


async def statistics(
    conn: AsyncConnection,
    auth: AuthUser,
    *,
    is_favorite: bool | None,
    is_trashed: bool | None,
    visibility: str | None,
) -> s.AssetStatsResponseDto:
    """{images, videos, total} of the caller's assets (uploads and external libraries): those
    in the trash with `isTrashed`, else those outside it."""
    if visibility not in (None, "timeline", "archive"):
        # Shoebox has no hidden or locked assets.
        return s.AssetStatsResponseDto(images=0, videos=0, total=0)
    trashed = "IS NOT NULL" if is_trashed else "IS NULL"
    sql = (
        "SELECT count(*) FILTER (WHERE a.type = 'IMAGE') AS images, "
        "count(*) FILTER (WHERE a.type = 'VIDEO') AS videos, count(*) AS total "
        f"FROM assets a WHERE a.owner_id = :owner AND {NOT_DELETING} AND a.deleted_at {trashed}"
    )
    params: dict[str, Any] = {"owner": auth.id}
    if visibility is not None:
        sql += " AND a.visibility = :vis"
        params["vis"] = visibility
    if is_favorite is not None:
        sql += " AND a.is_favorite = :fav"
        params["fav"] = is_favorite
    row = (await conn.execute(text(sql), params)).one()
    return s.AssetStatsResponseDto(images=row.images, videos=row.videos, total=row.total)


async def existing_device_assets(
    conn: AsyncConnection, auth: AuthUser, dto: s.CheckExistingAssetsDto
) -> list[str]:
    """Immich's legacy POST /assets/exist: which device asset ids the caller already has."""
    if not dto.device_asset_ids:
        return []
    rows = (
        await conn.execute(
            text(
                "SELECT DISTINCT device_asset_id FROM assets "
                "WHERE owner_id = :o AND device_id = :d "
                "AND device_asset_id = ANY(:ids)"
            ),
            {"o": auth.id, "d": dto.device_id, "ids": list(dto.device_asset_ids)},
        )
    ).all()
    return [r.device_asset_id for r in rows]
