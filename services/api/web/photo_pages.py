"""Photos: the timeline by month, one asset, folders and the map."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Template

from services.api import albums, assets, commands, media, queries
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from services.api.schemas import iso
from services.api.timeline import (
    TimelineFilter,
    bucket_rows,
    neighbours,
    ratio_of,
    time_buckets,
)
from services.api.web.common import (
    SCAN_MODES,
    field,
    library_or_404,
    page,
    see_other,
)
from shared.errors import InvalidInput, NotFound
from shared.events import ScanMode

log = logging.getLogger(__name__)


class PhotoPages(Controller):
    path = "/photos"

    @get("/", opt=requires(Permission.TIMELINE_READ))
    async def timeline(self, ctx: Context, auth: AuthUser) -> Template:
        """The months, newest first; the newest ones (a first screen's worth) come with their
        thumbnails in this page, so the first screen needs no script and no second request
        before its images. The others load as they scroll into view."""
        flt = TimelineFilter(auth, visibility="timeline")
        inline: dict[str, list[dict[str, Any]]] = {}
        async with ctx.engine.connect() as conn:
            months = await time_buckets(conn, flt, "desc")
            shown = 0
            for m in months:
                if shown >= FIRST_SCREEN_TILES:
                    break
                rows = await bucket_rows(conn, flt, m.time_bucket, "desc")
                rows = rows[: FIRST_SCREEN_TILES - shown]
                inline[m.time_bucket] = [
                    _tile(r, eager=shown + i < EAGER_TILES) for i, r in enumerate(rows)
                ]
                shown += len(rows)
            mine = await albums.list_albums(
                conn, auth, asset_id=None, shared=None, name=None, album_id=None
            )
        return page(
            "timeline.html",
            me=auth,
            months=months,
            inline=inline,
            selectable=True,
            albums=mine,
            section="photos",
        )

    @get("/months/{bucket:str}", opt=requires(Permission.TIMELINE_READ))
    async def month(
        self,
        ctx: Context,
        auth: AuthUser,
        bucket: str,
        skip: Annotated[int, QueryParameter(ge=0)] = 0,
    ) -> Template:
        """One month's thumbnails, asked for when its section scrolls into view; with `skip`,
        the rest of a month whose first thumbnails came with the page (tiles only, swapped
        into that month's grid)."""
        async with ctx.engine.connect() as conn:
            rows = await bucket_rows(
                conn, TimelineFilter(auth, visibility="timeline"), bucket, "desc"
            )
        end = skip + MONTH_CHUNK
        tiles = [_tile(r) for r in rows[skip:end]]
        template = "_tiles.html" if skip else "_month.html"
        more_at = end if end < len(rows) else None
        return page(template, bucket=bucket, tiles=tiles, more_at=more_at, selectable=True)

    @get("/{asset_id:uuid}", opt=requires(Permission.ASSET_READ))
    async def asset(self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> Template:
        """The preview (or the video's player) with everything known about the file."""
        found = await _asset_context(ctx, auth, asset_id)
        dto = found["asset"]
        preview = media.thumb_url(dto.id, dto.updated_at, "preview")
        return page("asset.html", me=auth, preview=preview, section="photos", **found)

    @get("/{asset_id:uuid}/full", opt=requires(Permission.ASSET_READ))
    async def full(self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> Template:
        """One photo filling the window: the original where browsers draw its format, else
        the largest rendition; ← and → step through the timeline, Escape goes back."""
        found = await _asset_context(ctx, auth, asset_id)
        dto = found["asset"]
        if dto.type == "VIDEO" or dto.original_mime_type not in BROWSER_IMAGES:
            source = media.thumb_url(dto.id, dto.updated_at, "preview")
        else:
            source = f"/api/assets/{dto.id}/original"
        return page("asset_full.html", me=auth, source=source, **found)


# Formats every browser draws itself (others are shown by their preview).
BROWSER_IMAGES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"}


async def _asset_context(ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        try:
            row = await assets.get_asset(conn, auth, asset_id)
        except InvalidInput as e:
            raise NotFound("Photo not found") from e
        library = await queries.get_library(conn, row.library_id)
        newer, older = await neighbours(conn, TimelineFilter(auth, visibility="timeline"), asset_id)
    return {"asset": assets.asset_dto(row), "library": library, "newer": newer, "older": older}


# The timeline page carries its newest months' thumbnails until this many (a large screen's
# first view); the first EAGER_TILES of them load at once, before layout decides what is seen.
FIRST_SCREEN_TILES = 60
EAGER_TILES = 30
# A month fragment carries at most this many thumbnails, then asks for the next ones when its
# end scrolls into view (a month of thousands is not one long answer).
MONTH_CHUNK = 240


def _tile(row: Any, eager: bool = False) -> dict[str, Any]:
    """One thumbnail of a grid, from an asset's row (its URL carries the rendition's version,
    so the browser keeps it for good)."""
    return {
        "eager": eager,
        "id": row.id,
        "ratio": ratio_of(row.width, row.height, row.orientation),
        "offline": row.is_offline,
        "image": row.type == "IMAGE",
        "thumb": media.thumb_url(row.id, iso(row.updated_at)),
    }


class FolderPages(Controller):
    path = "/folders"

    @get("/", opt=requires(Permission.LIBRARY_READ))
    async def libraries(self, ctx: Context, auth: AuthUser) -> Template:
        async with ctx.engine.connect() as conn:
            rows = await queries.list_libraries(conn, None if auth.is_admin else auth.id)
        found = [queries.library_dto(r) for r in rows if r.type == "EXTERNAL"]
        return page("folders.html", me=auth, libraries=found, section="folders")

    @get("/{library_id:uuid}", opt=requires(Permission.LIBRARY_READ))
    async def folder(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, path: str = ""
    ) -> Template:
        """One folder below an import path: its subfolders, then its photos."""
        library = queries.library_dto(await library_or_404(ctx, auth, library_id, counted=True))
        root = next(
            (p for p in library.import_paths if path == p or path.startswith(p.rstrip("/") + "/")),
            None,
        )
        if root is None:
            raise NotFound("Folder not found in this library")
        async with ctx.engine.connect() as conn:
            names, rows = await queries.folder_contents(conn, library_id, path)
        tiles = [_tile(r) for r in rows]
        parts = path[len(root) :].strip("/").split("/") if path != root else []
        crumbs = [(root, root)] + [
            (name, root.rstrip("/") + "/" + "/".join(parts[: i + 1]))
            for i, name in enumerate(parts)
        ]
        return page(
            "folder.html",
            me=auth,
            library=library,
            path=path.rstrip("/"),
            crumbs=crumbs,
            subfolders=names,
            tiles=tiles,
            section="folders",
        )

    @post("/{library_id:uuid}/scan", opt=requires(Permission.LIBRARY_UPDATE))
    async def scan(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        """Scan only this folder (and below): the library's page then shows its progress."""
        form = await request.form()
        path, mode = field(form, "path"), SCAN_MODES.get(field(form, "mode"), ScanMode.NEW)
        await library_or_404(ctx, auth, library_id)
        await commands.request_scan(ctx, auth, library_id, mode, path=path)
        return see_other(f"/libraries/{library_id}")


class MapPages(Controller):
    path = "/map"

    @get("/", opt=requires(Permission.MAP_READ))
    async def map(self, ctx: Context, auth: AuthUser) -> Template:
        """Leaflet draws the markers of GET /api/map/markers (static/map.js)."""
        return page("map.html", me=auth, tile_url=ctx.settings.map_tile_url, section="map")
