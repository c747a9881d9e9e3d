"""Read-model queries used by the API (the only reads it makes)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from services.api import schemas as s
from services.api.schemas import iso

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection


def user_admin_dto(row: Row[Any]) -> s.UserAdminResponseDto:
    return s.UserAdminResponseDto(
        id=str(row.id),
        email=row.email,
        name=row.name,
        is_admin=row.is_admin,
        should_change_password=row.should_change_password,
        storage_label=row.storage_label,
        quota_size_in_bytes=row.quota_size_in_bytes,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        deleted_at=iso(row.deleted_at),
        external_path=row.external_path,
        profile_changed_at=iso(row.created_at),
    )


def user_dto(row: Row[Any]) -> s.UserResponseDto:
    return s.UserResponseDto(
        id=str(row.id), email=row.email, name=row.name, profile_changed_at=iso(row.created_at)
    )


async def get_user(
    conn: AsyncConnection, user_id: uuid.UUID, *, with_deleted: bool = False
) -> Row[Any] | None:
    sql = "SELECT * FROM users WHERE id = :id"
    if not with_deleted:
        sql += " AND deleted_at IS NULL"
    return (await conn.execute(text(sql), {"id": user_id})).first()


async def get_user_by_email(conn: AsyncConnection, email: str) -> Row[Any] | None:
    return (
        await conn.execute(
            text("SELECT * FROM users WHERE lower(email) = lower(:e) AND deleted_at IS NULL"),
            {"e": email},
        )
    ).first()


async def list_users(conn: AsyncConnection, with_deleted: bool = False) -> list[Row[Any]]:
    sql = "SELECT * FROM users"
    if not with_deleted:
        sql += " WHERE deleted_at IS NULL"
    return list((await conn.execute(text(sql + " ORDER BY created_at, id"))).all())


async def server_initialized(conn: AsyncConnection) -> bool:
    """An admin can sign in: their user exists (a sign-up that stopped half-way is not one)."""
    return (
        await conn.execute(
            text("SELECT 1 FROM server_state s JOIN users u ON u.id = s.admin_id WHERE s.id = 1")
        )
    ).first() is not None


async def sign_up_state(conn: AsyncConnection) -> tuple[uuid.UUID | None, bool, bool]:
    """(admin id from ServerInitialized, admin user exists, admin's upload library exists)."""
    row = (
        await conn.execute(
            text(
                "SELECT s.admin_id, "
                "EXISTS (SELECT 1 FROM users u WHERE u.id = s.admin_id) AS user_exists, "
                "EXISTS (SELECT 1 FROM libraries l WHERE l.owner_id = s.admin_id "
                "AND l.type = 'UPLOAD') AS library_exists "
                "FROM server_state s WHERE s.id = 1"
            )
        )
    ).first()
    if row is None:
        return None, False, False
    return row.admin_id, bool(row.user_exists), bool(row.library_exists)


_LIBRARY_SELECT = (
    "SELECT l.*, (SELECT count(*) FROM assets a WHERE a.library_id = l.id "
    "AND a.deleted_at IS NULL) AS asset_count "
    "FROM libraries l WHERE NOT l.deleting"
)
# Without its assets counted: who may use it, and how (a count reads every asset's row: at a
# million assets, tens of milliseconds per scan-progress poll).
_LIBRARY_ROW = "SELECT l.*, NULL AS asset_count FROM libraries l WHERE NOT l.deleting"


def library_dto(row: Row[Any]) -> s.LibraryResponseDto:
    return s.LibraryResponseDto(
        id=str(row.id),
        owner_id=str(row.owner_id),
        name=row.name,
        type=row.type,
        import_paths=list(row.import_paths),
        exclusion_patterns=list(row.exclusion_patterns),
        asset_count=int(row.asset_count),
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        refreshed_at=iso(row.refreshed_at),
    )


async def get_library(
    conn: AsyncConnection, library_id: uuid.UUID, *, counted: bool = True
) -> Row[Any] | None:
    """The library's row; `counted` False leaves its asset_count out (None): not for a DTO."""
    select = _LIBRARY_SELECT if counted else _LIBRARY_ROW
    return (await conn.execute(text(select + " AND l.id = :id"), {"id": library_id})).first()


async def list_libraries(
    conn: AsyncConnection, owner_id: uuid.UUID | None, library_type: str | None = None
) -> list[Row[Any]]:
    """Every library (owner None) or one user's, of one type (`UPLOAD`/`EXTERNAL`) or all."""
    sql, params = _LIBRARY_SELECT, dict[str, object]()
    if owner_id is not None:
        sql, params["owner"] = sql + " AND l.owner_id = :owner", owner_id
    if library_type is not None:
        sql, params["type"] = sql + " AND l.type = :type", library_type
    return list((await conn.execute(text(sql + " ORDER BY l.created_at, l.id"), params)).all())


async def library_statistics(
    conn: AsyncConnection, library_id: uuid.UUID
) -> s.LibraryStatsResponseDto:
    row = (
        await conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE type = 'IMAGE') AS photos, "
                "count(*) FILTER (WHERE type = 'VIDEO') AS videos, count(*) AS total, "
                "coalesce(sum(file_size), 0) AS usage, "
                "count(*) FILTER (WHERE is_offline) AS offline "
                "FROM assets WHERE library_id = :id AND deleted_at IS NULL"
            ),
            {"id": library_id},
        )
    ).one()
    return s.LibraryStatsResponseDto(
        photos=row.photos,
        videos=row.videos,
        total=row.total,
        usage=int(row.usage),
        offline=row.offline,
    )


async def api_keys_of(conn: AsyncConnection, user_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        (
            await conn.execute(
                text("SELECT * FROM api_keys WHERE user_id = :u ORDER BY created_at, id"),
                {"u": user_id},
            )
        ).all()
    )


async def api_key(conn: AsyncConnection, key_id: uuid.UUID) -> Row[Any] | None:
    return (
        await conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": key_id})
    ).first()


async def offline_assets(conn: AsyncConnection, library_id: uuid.UUID) -> list[Row[Any]]:
    """(id, last_seq, offline_reason) of a library's offline assets."""
    return list(
        (
            await conn.execute(
                text(
                    "SELECT id, last_seq, offline_reason FROM assets "
                    "WHERE library_id = :l AND is_offline"
                ),
                {"l": library_id},
            )
        ).all()
    )


_BELOW = "starts_with(a.original_path, :prefix)"
_REST = "substr(a.original_path, length(:prefix) + 1)"


async def folder_contents(
    conn: AsyncConnection, library_id: uuid.UUID, folder: str
) -> tuple[list[str], list[Row[Any]]]:
    """(subfolder names, assets directly inside) of one folder of a library, from its assets'
    paths (offline ones too), so a folder is shown exactly when it holds something."""
    prefix = folder.rstrip("/") + "/"
    params = {"l": library_id, "prefix": prefix}
    names = (
        await conn.execute(
            text(
                f"SELECT DISTINCT split_part({_REST}, '/', 1) AS name FROM assets a "
                f"WHERE a.library_id = :l AND {_BELOW} AND strpos({_REST}, '/') > 0 "
                "ORDER BY 1"
            ),
            params,
        )
    ).scalars()
    rows = (
        await conn.execute(
            text(
                "SELECT a.id, a.type, a.width, a.height, a.orientation, a.is_offline, "
                "a.original_file_name, a.updated_at FROM assets a "
                f"WHERE a.library_id = :l AND {_BELOW} AND strpos({_REST}, '/') = 0 "
                "ORDER BY a.original_file_name, a.id"
            ),
            params,
        )
    ).all()
    return list(names), list(rows)
