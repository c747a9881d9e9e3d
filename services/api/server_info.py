"""Reads behind Immich's server routes: storage of the upload location, usage, versions."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from services.api import schemas as s
from services.api.assets import NOT_DELETING
from services.api.schemas import iso

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_HISTORY = uuid.UUID("5d0b7c1e-8f39-4a52-9e0c-2b6d3f7a1c48")


def as_human_readable(size: int, precision: int = 1) -> str:
    """Immich's asHumanReadable: `0 B`, `1.5 KiB`, `10.0 GiB` (1024-based, one decimal)."""
    magnitude = 0
    remainder = float(size)
    while remainder >= 1024 and magnitude + 1 < len(_UNITS):
        magnitude += 1
        remainder /= 1024
    digits = 0 if magnitude == 0 else precision
    # Rounding can reach a full 1024 of the unit chosen (1 MiB - 1 byte): take the next one.
    if magnitude + 1 < len(_UNITS) and round(remainder, digits) >= 1024:
        magnitude += 1
        remainder /= 1024
        digits = precision
    return f"{remainder:.{digits}f} {_UNITS[magnitude]}"


def _statvfs(path: Path) -> os.statvfs_result:
    """Of the upload location, or of its nearest existing parent before the first upload."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return os.statvfs(candidate)
    return os.statvfs("/")


async def storage(upload_path: Path) -> s.ServerStorageResponseDto:
    """Immich's getStorage: size, used (size - free) and available (to unprivileged users)."""
    st = await asyncio.to_thread(_statvfs, upload_path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bfree * st.f_frsize
    available = st.f_bavail * st.f_frsize
    used = total - free
    return s.ServerStorageResponseDto(
        disk_size=as_human_readable(total),
        disk_use=as_human_readable(used),
        disk_available=as_human_readable(available),
        disk_size_raw=total,
        disk_use_raw=used,
        disk_available_raw=available,
        disk_usage_percentage=round(used / total * 100, 2) if total else 0.0,
    )


# Per user: photos and videos outside the trash (external ones too), and the bytes of their
# uploads (what they keep in the upload location, as Immich counts usage).
_USAGE = text(
    f"""
    SELECT u.id, u.name, u.quota_size_in_bytes,
           count(a.id) FILTER (WHERE a.type = 'IMAGE') AS photos,
           count(a.id) FILTER (WHERE a.type = 'VIDEO') AS videos,
           coalesce(sum(a.file_size) FILTER (WHERE l.type = 'UPLOAD'), 0) AS usage,
           coalesce(sum(a.file_size) FILTER (WHERE l.type = 'UPLOAD' AND a.type = 'IMAGE'), 0)
             AS usage_photos,
           coalesce(sum(a.file_size) FILTER (WHERE l.type = 'UPLOAD' AND a.type = 'VIDEO'), 0)
             AS usage_videos
    FROM users u
    LEFT JOIN assets a ON a.owner_id = u.id AND a.deleted_at IS NULL AND {NOT_DELETING}
    LEFT JOIN libraries l ON l.id = a.library_id
    WHERE u.deleted_at IS NULL
    GROUP BY u.id, u.name, u.quota_size_in_bytes, u.created_at
    ORDER BY u.created_at, u.id
    """
)


async def statistics(conn: AsyncConnection) -> s.ServerStatsResponseDto:
    """Immich's getServerStatistics: per-user counts and usage, and their sums."""
    users = [
        s.UsageByUserDto(
            user_id=str(r.id),
            user_name=r.name,
            photos=r.photos,
            videos=r.videos,
            usage=int(r.usage),
            usage_photos=int(r.usage_photos),
            usage_videos=int(r.usage_videos),
            quota_size_in_bytes=r.quota_size_in_bytes,
        )
        for r in (await conn.execute(_USAGE)).all()
    ]
    return s.ServerStatsResponseDto(
        photos=sum(u.photos for u in users),
        videos=sum(u.videos for u in users),
        usage=sum(u.usage for u in users),
        usage_photos=sum(u.usage_photos for u in users),
        usage_videos=sum(u.usage_videos for u in users),
        usage_by_user=users,
    )


def _version(version: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*version)


def version_check(version: tuple[int, int, int]) -> s.VersionCheckStateResponseDto:
    """The running version is the newest release, as of now."""
    return s.VersionCheckStateResponseDto(
        checked_at=iso(datetime.now(UTC)), release_version=_version(version)
    )


async def version_history(
    conn: AsyncConnection, version: tuple[int, int, int]
) -> list[s.ServerVersionHistoryResponseDto]:
    """One entry, from the server's initialisation (empty before the first admin signs up)."""
    row = (await conn.execute(text("SELECT initialized_at FROM server_state LIMIT 1"))).first()
    if row is None:
        return []
    name = _version(version)
    return [
        s.ServerVersionHistoryResponseDto(
            id=str(uuid.uuid5(_HISTORY, name)),
            created_at=iso(row.initialized_at) or "",
            version=name,
        )
    ]
