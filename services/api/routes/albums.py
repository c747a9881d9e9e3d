"""AlbumController (/api/albums): Immich's albums tag, for the album owner."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.params import QueryParameter

from services.api import albums, commands
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context


class AlbumController(Controller):
    path = "/api/albums"
    tags = ["Albums"]

    @get("/", operation_id="getAllAlbums", opt=requires(Permission.ALBUM_READ))
    async def get_all(
        self,
        ctx: Context,
        auth: AuthUser,
        asset_id: Annotated[uuid.UUID | None, QueryParameter(name="assetId")] = None,
        shared: bool | None = None,
        is_shared: Annotated[bool | None, QueryParameter(name="isShared")] = None,
        is_owned: Annotated[bool | None, QueryParameter(name="isOwned")] = None,
        name: str | None = None,
        id: uuid.UUID | None = None,  # Immich's name for the query parameter
    ) -> list[s.AlbumResponseDto]:
        if is_owned is False:
            return []  # every album a user sees is their own
        async with ctx.engine.connect() as conn:
            return await albums.list_albums(
                conn, auth, asset_id=asset_id, shared=shared or is_shared, name=name, album_id=id
            )

    @post("/", operation_id="createAlbum", status_code=201, opt=requires(Permission.ALBUM_CREATE))
    async def create(
        self, ctx: Context, auth: AuthUser, data: s.CreateAlbumDto
    ) -> s.AlbumResponseDto:
        album_id = await commands.create_album(ctx, auth, data)
        async with ctx.engine.connect() as conn:
            return await albums.get_album(conn, auth, album_id)

    @get(
        "/statistics", operation_id="getAlbumStatistics", opt=requires(Permission.ALBUM_STATISTICS)
    )
    async def statistics(self, ctx: Context, auth: AuthUser) -> s.AlbumStatisticsResponseDto:
        async with ctx.engine.connect() as conn:
            return await albums.album_statistics(conn, auth)

    @get("/{album_id:str}", operation_id="getAlbumInfo", opt=requires(Permission.ALBUM_READ))
    async def get_one(
        self,
        ctx: Context,
        auth: AuthUser,
        album_id: uuid.UUID,
        without_assets: Annotated[bool, QueryParameter(name="withoutAssets")] = False,
    ) -> s.AlbumResponseDto:
        async with ctx.engine.connect() as conn:
            return await albums.get_album(conn, auth, album_id, without_assets=without_assets)

    @patch("/{album_id:str}", operation_id="updateAlbumInfo", opt=requires(Permission.ALBUM_UPDATE))
    async def update(
        self, ctx: Context, auth: AuthUser, album_id: uuid.UUID, data: s.UpdateAlbumDto
    ) -> s.AlbumResponseDto:
        await commands.update_album(ctx, auth, album_id, data)
        async with ctx.engine.connect() as conn:
            return await albums.get_album(conn, auth, album_id, without_assets=True)

    @delete(
        "/{album_id:str}",
        operation_id="deleteAlbum",
        status_code=204,
        opt=requires(Permission.ALBUM_DELETE),
    )
    async def delete_one(self, ctx: Context, auth: AuthUser, album_id: uuid.UUID) -> None:
        await commands.delete_album(ctx, auth, album_id)

    @put(
        "/{album_id:str}/assets",
        operation_id="addAssetsToAlbum",
        opt=requires(Permission.ALBUM_ASSET_CREATE),
    )
    async def add_assets(
        self, ctx: Context, auth: AuthUser, album_id: uuid.UUID, data: s.BulkIdsDto
    ) -> list[s.BulkIdResponseDto]:
        return await commands.add_assets(ctx, auth, album_id, data.ids)

    @delete(
        "/{album_id:str}/assets",
        operation_id="removeAssetFromAlbum",
        status_code=200,
        opt=requires(Permission.ALBUM_ASSET_DELETE),
    )
    async def remove_assets(
        self, ctx: Context, auth: AuthUser, album_id: uuid.UUID, data: s.BulkIdsDto
    ) -> list[s.BulkIdResponseDto]:
        return await commands.remove_assets(ctx, auth, album_id, data.ids)
