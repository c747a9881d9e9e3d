"""Albums: list, create from a selection, rename, remove assets, delete."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import Template

from services.api import albums, commands, media
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from services.api.web.common import (
    field,
    fields,
    page,
    see_other,
)
from shared.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)


def _asset_ids(form: FormMultiDict) -> list[uuid.UUID]:
    """The selected assets of a form (ids that are not UUIDs are no asset of anybody's)."""
    ids = []
    for value in fields(form, "assetId"):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


def _ratio(asset: s.AssetResponseDto) -> float:
    """Width over height as the thumbnail shows it (its EXIF size, turned by orientation)."""
    exif = asset.exif_info
    if isinstance(exif, s.ExifResponseDto) and exif.exif_image_width and exif.exif_image_height:
        w, h = exif.exif_image_width, exif.exif_image_height
        if exif.orientation in ("5", "6", "7", "8"):
            w, h = h, w
        return w / h
    return 1.0


class AlbumPages(Controller):
    path = "/albums"

    @get("/", opt=requires(Permission.ALBUM_READ))
    async def list_albums(self, ctx: Context, auth: AuthUser) -> Template:
        async with ctx.engine.connect() as conn:
            found = await albums.list_albums(
                conn, auth, asset_id=None, shared=None, name=None, album_id=None
            )
        return page("albums.html", me=auth, albums=found, section="albums")

    @post("/", opt=requires(Permission.ALBUM_CREATE))
    async def create(
        self, ctx: Context, auth: AuthUser, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        """A new album, with the assets selected in the timeline (if any)."""
        form = await request.form()
        name = field(form, "albumName") or "Untitled"
        dto = s.CreateAlbumDto(album_name=name, asset_ids=_asset_ids(form))
        album_id = await commands.create_album(ctx, auth, dto)
        return see_other(f"/albums/{album_id}")

    @get("/{album_id:uuid}", opt=requires(Permission.ALBUM_READ))
    async def album(self, ctx: Context, auth: AuthUser, album_id: uuid.UUID) -> Template:
        async with ctx.engine.connect() as conn:
            try:
                dto = await albums.get_album(conn, auth, album_id)
            except InvalidInput as e:
                raise NotFound("Album not found") from e
        tiles = [
            {
                "id": a.id,
                "ratio": _ratio(a),
                "offline": a.is_offline,
                "image": a.type == "IMAGE",
                "thumb": media.thumb_url(a.id, a.updated_at),
            }
            for a in dto.assets
        ]
        return page(
            "album.html", me=auth, album=dto, tiles=tiles, selectable=True, section="albums"
        )

    @post("/{album_id:uuid}/assets", opt=requires(Permission.ALBUM_ASSET_CREATE))
    async def add(
        self, ctx: Context, auth: AuthUser, album_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        """Add the assets selected in the timeline to an album."""
        form = await request.form()
        try:
            await commands.add_assets(ctx, auth, album_id, _asset_ids(form))
        except InvalidInput as e:
            raise NotFound("Album not found") from e
        return see_other(f"/albums/{album_id}")

    @post("/{album_id:uuid}/rename", opt=requires(Permission.ALBUM_UPDATE))
    async def rename(
        self, ctx: Context, auth: AuthUser, album_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        name = field(form, "albumName")
        if not name:
            raise InvalidInput("An album needs a name")
        try:
            await commands.update_album(ctx, auth, album_id, s.UpdateAlbumDto(album_name=name))
        except InvalidInput as e:
            raise NotFound("Album not found") from e
        return see_other(f"/albums/{album_id}")

    @post("/{album_id:uuid}/remove", opt=requires(Permission.ALBUM_ASSET_DELETE))
    async def remove(
        self, ctx: Context, auth: AuthUser, album_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        """Take the selected photos out of the album (they stay in the timeline)."""
        form = await request.form()
        try:
            await commands.remove_assets(ctx, auth, album_id, _asset_ids(form))
        except InvalidInput as e:
            raise NotFound("Album not found") from e
        return see_other(f"/albums/{album_id}")

    @post("/{album_id:uuid}/delete", opt=requires(Permission.ALBUM_DELETE))
    async def delete(self, ctx: Context, auth: AuthUser, album_id: uuid.UUID) -> Response[Any]:
        try:
            await commands.delete_album(ctx, auth, album_id)
        except InvalidInput as e:
            raise NotFound("Album not found") from e
        return see_other("/albums")
