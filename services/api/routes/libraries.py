"""LibraryController: /api/libraries (Immich's libraries tag, plus Shoebox's scan status)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, delete, get, post, put
from litestar.params import QueryParameter
from msgspec import UNSET

from services.api import commands, queries
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from services.api.scans import scan_status
from shared.errors import InvalidInput
from shared.events import ScanMode


async def _library_dto(ctx: Context, library_id: uuid.UUID) -> s.LibraryResponseDto:
    async with ctx.engine.connect() as conn:
        row = await queries.get_library(conn, library_id)
    if row is None:
        raise InvalidInput("Library not found")
    return queries.library_dto(row)


class LibraryController(Controller):
    path = "/api/libraries"
    tags = ["Libraries"]

    @get("/", operation_id="getAllLibraries", opt=requires(Permission.LIBRARY_READ))
    async def list(
        self,
        ctx: Context,
        auth: AuthUser,
        library_type: Annotated[
            Literal["UPLOAD", "EXTERNAL"] | None, QueryParameter(name="type")
        ] = None,
    ) -> list[s.LibraryResponseDto]:
        """Immich before v1.106: `?type=UPLOAD|EXTERNAL` keeps one type."""
        async with ctx.engine.connect() as conn:
            rows = await queries.list_libraries(
                conn, None if auth.is_admin else auth.id, library_type
            )
        return [queries.library_dto(r) for r in rows]

    @post(
        "/", operation_id="createLibrary", status_code=201, opt=requires(Permission.LIBRARY_CREATE)
    )
    async def create(
        self, ctx: Context, auth: AuthUser, data: s.CreateLibraryDto
    ) -> s.LibraryResponseDto:
        return await _library_dto(ctx, await commands.create_library(ctx, auth, data))

    @get("/{library_id:str}", operation_id="getLibrary", opt=requires(Permission.LIBRARY_READ))
    async def get_one(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID
    ) -> s.LibraryResponseDto:
        return queries.library_dto(await commands.visible_library(ctx, auth, library_id))

    @put("/{library_id:str}", operation_id="updateLibrary", opt=requires(Permission.LIBRARY_UPDATE))
    async def update(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, data: s.UpdateLibraryDto
    ) -> s.LibraryResponseDto:
        await commands.update_library(ctx, auth, library_id, data)
        return await _library_dto(ctx, library_id)

    @delete(
        "/{library_id:str}",
        operation_id="deleteLibrary",
        status_code=204,
        opt=requires(Permission.LIBRARY_DELETE),
    )
    async def delete_one(self, ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> None:
        await commands.delete_library(ctx, auth, library_id)

    @post(
        "/{library_id:str}/validate",
        operation_id="validate",
        status_code=200,
        opt=requires(Permission.ALL),
    )
    async def validate(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, data: s.ValidateLibraryDto
    ) -> s.ValidateLibraryResponseDto:
        results = await commands.validate_library(ctx, auth, library_id, data)
        return s.ValidateLibraryResponseDto(
            import_paths=[
                s.ValidateLibraryImportPathResponseDto(
                    import_path=path,
                    is_valid=message is None,
                    message=UNSET if message is None else message,
                )
                for path, message in results
            ]
        )

    @get(
        "/{library_id:str}/statistics",
        operation_id="getLibraryStatistics",
        opt=requires(Permission.LIBRARY_STATISTICS),
    )
    async def statistics(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID
    ) -> s.LibraryStatsResponseDto:
        await commands.visible_library(ctx, auth, library_id, counted=False)
        async with ctx.engine.connect() as conn:
            return await queries.library_statistics(conn, library_id)

    @post(
        "/{library_id:str}/scan",
        operation_id="scanLibrary",
        status_code=204,
        opt=requires(Permission.LIBRARY_UPDATE),
    )
    async def scan(
        self,
        ctx: Context,
        auth: AuthUser,
        library_id: uuid.UUID,
        data: s.ScanLibraryDto | None = None,
    ) -> None:
        mode = ScanMode.NEW
        if data is not None and data.refresh_all_files:
            mode = ScanMode.FORCE
        elif data is not None and data.refresh_modified_files:
            mode = ScanMode.MODIFIED
        path = data.path if data is not None else None
        await commands.request_scan(ctx, auth, library_id, mode, path=path)

    @get(
        "/{library_id:str}/scan",
        operation_id="getLibraryScanStatus",
        opt=requires(Permission.LIBRARY_READ),
    )
    async def scan_state(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID
    ) -> s.LibraryScanStatusDto:
        await commands.visible_library(ctx, auth, library_id, counted=False)
        return await scan_status(ctx, library_id)

    @post(
        "/{library_id:str}/removeOffline",
        operation_id="removeOfflineFiles",
        status_code=200,
        opt=requires(Permission.LIBRARY_UPDATE),
    )
    async def remove_offline(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID
    ) -> s.RemoveOfflineFilesResponseDto:
        """Remove the assets whose files are really gone; keep those of unavailable import
        paths (an unplugged drive), and say how many of each."""
        return await commands.remove_offline(ctx, auth, library_id)
