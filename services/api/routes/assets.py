"""AssetController (/api/assets) and SearchController (/api/search)."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post

from services.api import assets
from services.api import schemas as s
from services.api.auth import AuthUser
from services.api.context import Context


class AssetController(Controller):
    path = "/api/assets"
    tags = ["Assets"]

    @get("/{asset_id:uuid}", operation_id="getAssetInfo")
    async def get_one(self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> s.AssetResponseDto:
        async with ctx.engine.connect() as conn:
            return assets.asset_dto(await assets.get_asset(conn, auth, asset_id))


class SearchController(Controller):
    path = "/api/search"
    tags = ["Search"]

    @post("/metadata", operation_id="searchAssets", status_code=200)
    async def metadata(self, ctx: Context, auth: AuthUser,
                       data: s.MetadataSearchDto) -> s.SearchResponseDto:
        async with ctx.engine.connect() as conn:
            return await assets.search(conn, auth, data)
