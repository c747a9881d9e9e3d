"""AssetController (/api/assets) and SearchController (/api/search)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import QueryParameter
from litestar.response import Stream

from services.api import assets, uploads
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from shared.media import mime_type


class AssetController(Controller):
    path = "/api/assets"
    tags = ["Assets"]

    # Streamed to disk; bounded by SHOEBOX_MAX_UPLOAD_SIZE in uploads.upload_asset, not here.
    @post(
        "/",
        operation_id="uploadAsset",
        status_code=201,
        opt=requires(Permission.ASSET_UPLOAD),
        request_max_body_size=None,
    )
    async def upload(
        self, ctx: Context, auth: AuthUser, request: Request[Any, Any, Any]
    ) -> Response[s.AssetMediaResponseDto]:
        """Multipart upload (Immich's AssetMediaCreateDto), streamed to disk."""
        asset_id, created = await uploads.upload_asset(
            ctx,
            auth,
            request.headers.get("content-type", ""),
            request.headers.get("x-immich-checksum"),
            uploads.bounded(request.stream(), request.content_length, ctx.settings.max_upload_size),
        )
        body = s.AssetMediaResponseDto(
            id=str(asset_id), status="created" if created else "duplicate"
        )
        return Response(body, status_code=201 if created else 200)

    @post(
        "/bulk-upload-check",
        operation_id="checkBulkUpload",
        status_code=200,
        opt=requires(Permission.ASSET_UPLOAD),
    )
    async def bulk_upload_check(
        self, ctx: Context, auth: AuthUser, data: s.AssetBulkUploadCheckDto
    ) -> s.AssetBulkUploadCheckResponseDto:
        return await uploads.bulk_upload_check(ctx, auth, data)

    @post(
        "/exist", operation_id="checkExistingAssets", status_code=200, opt=requires(Permission.ALL)
    )
    async def exist(
        self, ctx: Context, auth: AuthUser, data: s.CheckExistingAssetsDto
    ) -> s.CheckExistingAssetsResponseDto:
        async with ctx.engine.connect() as conn:
            found = await assets.existing_device_assets(conn, auth, data)
        return s.CheckExistingAssetsResponseDto(existing_ids=found)

    @delete(
        "/", operation_id="deleteAssets", status_code=204, opt=requires(Permission.ASSET_DELETE)
    )
    async def delete_many(self, ctx: Context, auth: AuthUser, data: s.AssetBulkDeleteDto) -> None:
        await uploads.delete_assets(ctx, auth, data.ids)

    @get(
        "/statistics", operation_id="getAssetStatistics", opt=requires(Permission.ASSET_STATISTICS)
    )
    async def statistics(
        self,
        ctx: Context,
        auth: AuthUser,
        is_favorite: Annotated[bool | None, QueryParameter(name="isFavorite")] = None,
        is_trashed: Annotated[bool | None, QueryParameter(name="isTrashed")] = None,
        visibility: str | None = None,
    ) -> s.AssetStatsResponseDto:
        async with ctx.engine.connect() as conn:
            return await assets.statistics(
                conn, auth, is_favorite=is_favorite, is_trashed=is_trashed, visibility=visibility
            )

    @get("/{asset_id:str}", operation_id="getAssetInfo", opt=requires(Permission.ASSET_READ))
    async def get_one(
        self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID
    ) -> s.AssetResponseDto:
        async with ctx.engine.connect() as conn:
            return assets.asset_dto(await assets.get_asset(conn, auth, asset_id))

    @get(
        "/{asset_id:str}/original",
        operation_id="downloadAsset",
        opt=requires(Permission.ASSET_DOWNLOAD),
    )
    async def original(self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> Stream:
        """The original file, streamed."""
        async with ctx.engine.connect() as conn:
            row = await assets.get_asset(conn, auth, asset_id)
            chunks, size = await assets.open_original(conn, ctx.settings, row)
        return Stream(
            chunks,
            media_type=row.mime_type or mime_type(row.original_path),
            headers={
                **assets.MEDIA_HEADERS,
                "Content-Length": str(size),
                "Content-Disposition": assets.content_disposition("inline", row.original_file_name),
            },
        )

    @get("/{asset_id:str}/thumbnail", operation_id="viewAsset", opt=requires(Permission.ASSET_VIEW))
    async def thumbnail(
        self,
        ctx: Context,
        auth: AuthUser,
        asset_id: uuid.UUID,
        size: Literal["thumbnail", "preview", "fullsize"] = "thumbnail",
    ) -> Stream:
        """The thumbnail (~250 px) or preview (~1440 px), JPEGs from the object store;
        `fullsize` is answered with the preview."""
        async with ctx.engine.connect() as conn:
            row = await assets.get_asset(conn, auth, asset_id)
        key = row.thumbnail_key if size == "thumbnail" else row.preview_key
        chunks, length = await assets.open_thumbnail(ctx.thumbs, key)
        assert key is not None
        return Stream(
            chunks,
            media_type=mime_type(key),
            headers={**assets.MEDIA_HEADERS, "Content-Length": str(length)},
        )


class SearchController(Controller):
    path = "/api/search"
    tags = ["Search"]

    @post(
        "/metadata",
        operation_id="searchAssets",
        status_code=200,
        opt=requires(Permission.ASSET_READ),
    )
    async def metadata(
        self, ctx: Context, auth: AuthUser, data: s.MetadataSearchDto
    ) -> s.SearchResponseDto:
        async with ctx.engine.connect() as conn:
            return await assets.search(conn, auth, data)
