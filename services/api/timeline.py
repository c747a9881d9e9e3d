"""Timeline buckets, the columnar bucket contents and map markers, from the assets read model.

Every query is scoped by owner (or by an album the caller owns) and bounded by
`local_date_time`, so it runs on the `assets_owner_taken (owner_id, local_date_time)` index.
`local_date_time` holds the capture wall-clock time tagged as UTC (Immich's localDateTime), so
months are cut in UTC.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from services.api import schemas as s
from services.api.assets import NOT_DELETING, thumbhash_b64
from services.api.schemas import iso
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.api.auth import AuthUser

_BUCKET = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


class TimelineFilter:
    """The WHERE clause shared by /timeline/buckets and /timeline/bucket."""

    def __init__(
        self,
        auth: AuthUser,
        *,
        album_id: uuid.UUID | None = None,
        is_favorite: bool | None = None,
        is_trashed: bool | None = None,
        visibility: str | None = None,
        user_id: uuid.UUID | None = None,
    ) -> None:
        self.auth = auth
        self.album_id = album_id
        self.is_favorite = is_favorite
        self.is_trashed = bool(is_trashed)
        # Immich's default is the timeline and the archive; Shoebox has no hidden or locked
        # assets, so those views are empty.
        self.visibility = visibility
        self.empty = visibility not in (None, "timeline", "archive")
        if user_id is not None and user_id != auth.id:
            raise InvalidInput("Not found or no timeline.read access")

    async def where(self, conn: AsyncConnection) -> tuple[str, dict[str, Any]]:
        clauses = [NOT_DELETING]
        params: dict[str, Any] = {}
        if self.album_id is not None:
            owner = (
                await conn.execute(
                    text("SELECT owner_id FROM albums WHERE id = :id"), {"id": self.album_id}
                )
            ).scalar()
            if owner is None or owner != self.auth.id:
                raise InvalidInput("Not found or no album.read access")
            clauses.append("a.id IN (SELECT asset_id FROM album_assets WHERE album_id = :album)")
            params["album"] = self.album_id
        else:
            clauses.append("a.owner_id = :owner")
            params["owner"] = self.auth.id
        if self.is_favorite is not None:
            clauses.append("a.is_favorite = :fav")
            params["fav"] = self.is_favorite
        # Trashed assets leave the timeline; the trash shows only them.
        clauses.append("a.deleted_at IS NOT NULL" if self.is_trashed else "a.deleted_at IS NULL")
        if self.visibility is not None:
            clauses.append("a.visibility = :vis")
            params["vis"] = self.visibility
        return " AND ".join(clauses), params


async def time_buckets(
    conn: AsyncConnection, flt: TimelineFilter, order: str
) -> list[s.TimeBucketsResponseDto]:
    """[{timeBucket: first day of the month, count}] over the caller's assets, offline too."""
    if flt.empty:
        return []
    where, params = await flt.where(conn)
    direction = "ASC" if order == "asc" else "DESC"
    rows = (
        await conn.execute(
            text(
                "SELECT date_trunc('month', a.local_date_time AT TIME ZONE 'UTC') AS month, "
                f"count(*) AS n FROM assets a WHERE {where} GROUP BY 1 ORDER BY 1 {direction}"
            ),
            params,
        )
    ).all()
    return [
        s.TimeBucketsResponseDto(time_bucket=r.month.strftime("%Y-%m-%d"), count=r.n) for r in rows
    ]


def parse_bucket(value: str) -> tuple[datetime, datetime]:
    """`YYYY-MM-DD` (or a full ISO date-time, as older clients send) -> [month start, next)."""
    match = _BUCKET.match(value.strip())
    if not match:
        raise InvalidInput("timeBucket must be a date in the form YYYY-MM-DD")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise InvalidInput("timeBucket must be a date in the form YYYY-MM-DD")
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def ratio_of(width: int | None, height: int | None, orientation: int | None) -> float:
    """Width over height as the thumbnail shows it (EXIF orientations 5-8 turn it)."""
    if not width or not height:
        return 1.0
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width / height


async def bucket_rows(
    conn: AsyncConnection, flt: TimelineFilter, bucket: str, order: str
) -> list[Any]:
    """The assets of one month, in the timeline's order (the web app's month fragment reads
    these too: it needs each asset's last change for its thumbnail's URL)."""
    start, end = parse_bucket(bucket)
    if flt.empty:
        return []
    where, params = await flt.where(conn)
    direction = "ASC" if order == "asc" else "DESC"
    return list(
        (
            await conn.execute(
                text(
                    "SELECT a.id, a.owner_id, a.type, a.width, a.height, a.orientation, "
                    "a.is_favorite, a.visibility, a.deleted_at, "
                    "a.is_offline, a.file_created_at, a.local_date_time, a.created_at, "
                    "a.updated_at, a.duration_seconds, a.latitude, a.longitude, a.thumbhash "
                    "FROM assets a "
                    f"WHERE {where} AND a.local_date_time >= :start "
                    "AND a.local_date_time < :end "
                    f"ORDER BY a.local_date_time {direction}, a.id {direction}"
                ),
                {**params, "start": start, "end": end},
            )
        ).all()
    )


async def time_bucket(
    conn: AsyncConnection, flt: TimelineFilter, bucket: str, order: str, with_coordinates: bool
) -> s.TimeBucketAssetResponseDto:
    """The assets of one month, as Immich's parallel arrays."""
    rows = await bucket_rows(conn, flt, bucket, order)
    n = len(rows)
    none: list[Any] = [None] * n
    dto = s.TimeBucketAssetResponseDto(
        id=[str(r.id) for r in rows],
        owner_id=[str(r.owner_id) for r in rows],
        ratio=[ratio_of(r.width, r.height, r.orientation) for r in rows],
        is_favorite=[r.is_favorite for r in rows],
        is_trashed=[r.deleted_at is not None for r in rows],
        is_image=[r.type == "IMAGE" for r in rows],
        visibility=[r.visibility for r in rows],
        thumbhash=[thumbhash_b64(r.thumbhash) for r in rows],
        file_created_at=[iso(r.file_created_at) or "" for r in rows],
        created_at=[iso(r.created_at) or "" for r in rows],
        local_offset_hours=[
            round((r.local_date_time - r.file_created_at).total_seconds() / 3600, 2) for r in rows
        ],
        duration=[
            round(r.duration_seconds * 1000) if r.type == "VIDEO" and r.duration_seconds else None
            for r in rows
        ],
        projection_type=list(none),
        live_photo_video_id=list(none),
        city=list(none),
        country=list(none),
        is_offline=[r.is_offline for r in rows],
    )
    if with_coordinates:
        dto.latitude = [r.latitude for r in rows]
        dto.longitude = [r.longitude for r in rows]
    return dto


async def neighbours(
    conn: AsyncConnection, flt: TimelineFilter, asset_id: uuid.UUID
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(newer, older): the assets beside one in the timeline's order (newest first)."""
    if flt.empty:
        return None, None
    where, params = await flt.where(conn)
    row = (
        await conn.execute(
            text(f"SELECT a.local_date_time AS taken FROM assets a WHERE {where} AND a.id = :id"),
            {**params, "id": asset_id},
        )
    ).first()
    if row is None:
        return None, None
    found: list[uuid.UUID | None] = []
    for op, direction in ((">", "ASC"), ("<", "DESC")):
        found.append(
            (
                await conn.execute(
                    text(
                        f"SELECT a.id FROM assets a WHERE {where} "
                        f"AND (a.local_date_time, a.id) {op} (:taken, :id) "
                        f"ORDER BY a.local_date_time {direction}, a.id {direction} LIMIT 1"
                    ),
                    {**params, "taken": row.taken, "id": asset_id},
                )
            ).scalar()
        )
    return found[0], found[1]


async def map_markers(
    conn: AsyncConnection,
    auth: AuthUser,
    *,
    is_favorite: bool | None,
    is_archived: bool | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> list[s.MapMarkerResponseDto]:
    """One marker per asset of the caller that has GPS coordinates."""
    sql = (
        f"SELECT a.id, a.latitude, a.longitude FROM assets a WHERE a.owner_id = :owner "
        f"AND {NOT_DELETING} AND a.latitude IS NOT NULL AND a.longitude IS NOT NULL "
        "AND a.deleted_at IS NULL"
    )
    params: dict[str, Any] = {"owner": auth.id}
    if is_archived is not None:
        sql += " AND a.visibility = :vis"
        params["vis"] = "archive" if is_archived else "timeline"
    if is_favorite is not None:
        sql += " AND a.is_favorite = :fav"
        params["fav"] = is_favorite
    if created_after is not None:
        sql += " AND a.file_created_at >= :after"
        params["after"] = created_after
    if created_before is not None:
        sql += " AND a.file_created_at <= :before"
        params["before"] = created_before
    rows = (await conn.execute(text(sql + " ORDER BY a.file_created_at DESC, a.id"), params)).all()
    return [s.MapMarkerResponseDto(id=str(r.id), lat=r.latitude, lon=r.longitude) for r in rows]
