"""AssetController (/api/assets), TrashController (/api/trash) and SearchController."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import QueryParameter
from litestar.response import Stream

from services.api import assets, edits, media, uploads
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from shared.errors import InvalidInput
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
        """Uploads go to the trash, or with `force` are removed for good; external assets are
        refused (Shoebox never deletes their files)."""
        await edits.delete_assets(ctx, auth, data.ids, data.force)

    @put("/", operation_id="updateAssets", status_code=204, opt=requires(Permission.ASSET_UPDATE))
    async def update_many(self, ctx: Context, auth: AuthUser, data: s.AssetBulkUpdateDto) -> None:
        await edits.update_assets(ctx, auth, data.ids, data)

    @put("/{asset_id:str}", operation_id="updateAsset", opt=requires(Permission.ASSET_UPDATE))
    async def update_one(
        self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID, data: s.UpdateAssetDto
    ) -> s.AssetResponseDto:
        await edits.update_assets(ctx, auth, [asset_id], data)
        async with ctx.engine.connect() as conn:
            return assets.asset_dto(await assets.get_asset(conn, auth, asset_id))

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
            chunks, size = await media.open_original(conn, ctx.settings, row)
        return Stream(
            chunks,
            media_type=row.mime_type or mime_type(row.original_path),
            headers={
                **media.MEDIA_HEADERS,
                "Content-Length": str(size),
                "Content-Disposition": media.content_disposition("inline", row.original_file_name),
            },
        )

    @get(
        "/{asset_id:str}/video/playback",
        operation_id="playAssetVideo",
        opt=requires(Permission.ASSET_VIEW),
    )
    async def playback(self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> Stream:
        """A video, streamed: Shoebox transcodes nothing, so this is the original file."""
        async with ctx.engine.connect() as conn:
            row = await assets.get_asset(conn, auth, asset_id)
            if row.type != "VIDEO":
                raise InvalidInput("Asset is not a video")
            chunks, size = await media.open_original(conn, ctx.settings, row)
        return Stream(
            chunks,
            media_type=row.mime_type or mime_type(row.original_path),
            headers={**media.MEDIA_HEADERS, "Content-Length": str(size)},
        )

    @get("/{asset_id:str}/thumbnail", operation_id="viewAsset", opt=requires(Permission.ASSET_VIEW))
    async def thumbnail(
        self,
        ctx: Context,
        auth: AuthUser,
        request: Request[Any, Any, Any],
        asset_id: uuid.UUID,
        size: Literal["thumbnail", "preview", "fullsize"] = "thumbnail",
        c: str | None = None,
    ) -> Response[Any]:
        """The thumbnail (~250 px) or preview (~1440 px), JPEGs from the object store;
        `fullsize` is answered with the preview. With `c`, the asset's current rendition
        version, the answer is cached as immutable; every answer has an ETag (a revalidation
        that matches gets 304 without the bytes)."""
        async with ctx.engine.connect() as conn:
            row = await assets.get_asset(conn, auth, asset_id)
        key = row.thumbnail_key if size == "thumbnail" else row.preview_key
        version = media.thumb_version(s.iso(row.updated_at))
        etag = f'"{version}-{"t" if size == "thumbnail" else "p"}"'
        cache = media.IMMUTABLE_HEADERS if c == version else media.MEDIA_HEADERS
        if key is not None and etag in request.headers.get("if-none-match", ""):
            return Response(b"", status_code=304, headers={**cache, "ETag": etag})
        chunks, length = await media.open_thumbnail(ctx.thumbs, key)
        assert key is not None
        return Stream(
            chunks,
            media_type=mime_type(key),
            headers={**cache, "ETag": etag, "Content-Length": str(length)},
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


class TrashController(Controller):
    path = "/api/trash"
    tags = ["Trash"]

    @post(
        "/empty", operation_id="emptyTrash", status_code=200, opt=requires(Permission.ASSET_DELETE)
    )
    async def empty(self, ctx: Context, auth: AuthUser) -> s.TrashResponseDto:
        """The caller's trashed uploads are removed for good (their files deleted)."""
        return s.TrashResponseDto(count=await edits.empty_trash(ctx, auth))

    @post(
        "/restore",
        operation_id="restoreTrash",
        status_code=200,
        opt=requires(Permission.ASSET_DELETE),
    )
    async def restore(self, ctx: Context, auth: AuthUser) -> s.TrashResponseDto:
        return s.TrashResponseDto(count=await edits.restore_trash(ctx, auth))

    @post(
        "/restore/assets",
        operation_id="restoreAssets",
        status_code=200,
        opt=requires(Permission.ASSET_DELETE),
    )
    async def restore_assets(
        self, ctx: Context, auth: AuthUser, data: s.BulkIdsDto
    ) -> s.TrashResponseDto:
        return s.TrashResponseDto(count=await edits.restore_assets(ctx, auth, data.ids))
