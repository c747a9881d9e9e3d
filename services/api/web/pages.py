"""The web app's pages: each handler calls the same commands and queries as the REST routes.

Forms post and redirect (they work without script); htmx swaps server-rendered fragments for
the live path validation, the lazily loaded timeline months and the scan progress (SSE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.exceptions import HTTPException
from litestar.params import QueryParameter
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage
from litestar.types import ExceptionHandlersMap

from services.api import albums, assets, commands, queries
from services.api import schemas as s
from services.api.auth import CALLER, AuthUser, Permission, public, requires, signed_in
from services.api.context import Context
from services.api.errors import STATUS
from services.api.routes.auth import SESSION_COOKIES, set_session_cookies
from services.api.scans import scan_status
from services.api.schemas import iso
from services.api.timeline import (
    TimelineFilter,
    bucket_rows,
    neighbours,
    ratio_of,
    time_buckets,
)
from services.api.web.render import render
from shared import errors, sysconfig
from shared.checkpoint import checkpoint_subject
from shared.errors import InvalidInput, NotFound, ShoeboxError, Unauthorized
from shared.events import ScanMode

log = logging.getLogger(__name__)

# The progress stream renders when something changed, at most every PROGRESS_COALESCE s, and
# says it is alive (and looks once) after PROGRESS_QUIET s without any change.
PROGRESS_COALESCE = 0.2
PROGRESS_QUIET = 15.0
SCAN_MODES = {"new": ScanMode.NEW, "modified": ScanMode.MODIFIED, "force": ScanMode.FORCE}


def page(template: str, status_code: int = 200, /, **context: Any) -> Template:
    return Template(template_name=template, context=context, status_code=status_code)


def see_other(path: str) -> Redirect:
    """The answer to a form post: the browser GETs `path` (POST/redirect/GET)."""
    return Redirect(path=path, status_code=303)


def field(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def fields(form: FormMultiDict, name: str) -> list[str]:
    """Every non-empty value of a repeated field, in order."""
    return [v.strip() for v in form.getall(name, []) if isinstance(v, str) and v.strip()]


async def initialized(ctx: Context) -> bool:
    async with ctx.engine.connect() as conn:
        return await queries.server_initialized(conn)


# --- first run, sign-in, sign-out -------------------------------------------------------------


class AuthPages(Controller):
    path = "/auth"

    @get("/sign-up", opt=public())
    async def sign_up_page(self, ctx: Context) -> Response[Any]:
        if await initialized(ctx):
            return Redirect("/auth/login")
        return page("sign_up.html")

    @post("/sign-up", opt=public())
    async def sign_up(self, ctx: Context, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        email, name, password = field(form, "email"), field(form, "name"), form.get("password")
        dto = s.SignUpDto(email=email, name=name, password=str(password or ""))
        try:
            await commands.admin_sign_up(ctx, dto)
            _, token = await commands.password_login(ctx, dto.email, dto.password)
        except ShoeboxError as e:
            return page("sign_up.html", 400, error=e.detail, email=email, name=name)
        response = see_other("/admin/users")
        set_session_cookies(response, token)
        return response

    @get("/login", opt=public())
    async def login_page(self, ctx: Context) -> Response[Any]:
        if not await initialized(ctx):
            return Redirect("/auth/sign-up")
        return page("login.html")

    @post("/login", opt=public())
    async def login(self, ctx: Context, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        email = field(form, "email")
        try:
            _, token = await commands.password_login(ctx, email, str(form.get("password") or ""))
        except Unauthorized as e:
            return page("login.html", 401, error=e.detail, email=email)
        response = see_other("/photos")
        set_session_cookies(response, token)
        return response

    @post("/logout", opt=signed_in())
    async def logout(self, ctx: Context, auth: AuthUser) -> Response[Any]:
        await commands.logout(ctx, auth)
        response = see_other("/auth/login")
        for name in SESSION_COOKIES:
            response.delete_cookie(name)
        return response


@get("/", opt=public())
async def home(ctx: Context, request: Request[Any, Any, Any]) -> Response[Any]:
    """The first visit offers the admin sign-up; afterwards the photos (or the sign-in)."""
    if not await initialized(ctx):
        return Redirect("/auth/sign-up")
    return Redirect("/photos" if request.cookies.get("immich_access_token") else "/auth/login")


THEMES = ("system", "light", "dark")
THEME_COOKIE = "shoebox_theme"


@post("/theme", opt=public())
async def choose_theme(request: Request[Any, Any, Any]) -> Response[Any]:
    """Light, dark or the system's setting, kept in a cookie (the pages render it, so there
    is no flash of the other theme); back to the page the button was on."""
    form = await request.form()
    choice, back = field(form, "theme"), field(form, "back")
    if choice not in THEMES:
        raise InvalidInput(f"theme must be one of {', '.join(THEMES)}")
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = "/"
    response = see_other(back)
    response.set_cookie(
        THEME_COOKIE, choice, max_age=400 * 24 * 3600, samesite="lax", httponly=True, path="/"
    )
    return response


# --- administration: users ----------------------------------------------------------------


class UserPages(Controller):
    path = "/admin/users"

    @get("/", opt=requires(Permission.ADMIN_USER_READ, admin=True))
    async def list_users(self, ctx: Context, auth: AuthUser) -> Template:
        async with ctx.engine.connect() as conn:
            users = [queries.user_admin_dto(r) for r in await queries.list_users(conn)]
        return page("users.html", me=auth, users=users, section="admin")

    @post("/", opt=requires(Permission.ADMIN_USER_CREATE, admin=True))
    async def create(
        self, ctx: Context, auth: AuthUser, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        try:
            await commands.create_user(
                ctx,
                email=field(form, "email"),
                password=str(form.get("password") or ""),
                name=field(form, "name"),
                external_path=field(form, "externalPath") or None,
            )
        except ShoeboxError as e:
            return await self._with_error(ctx, auth, e)
        return see_other("/admin/users")

    @post("/{user_id:uuid}", opt=requires(Permission.ADMIN_USER_UPDATE, admin=True))
    async def update(
        self, ctx: Context, auth: AuthUser, user_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        dto = s.UserAdminUpdateDto(
            name=field(form, "name"), external_path=field(form, "externalPath") or None
        )
        try:
            await commands.update_user(ctx, user_id, dto, by_admin=True)
        except ShoeboxError as e:
            return await self._with_error(ctx, auth, e)
        return see_other("/admin/users")

    @post("/{user_id:uuid}/delete", opt=requires(Permission.ADMIN_USER_DELETE, admin=True))
    async def delete(self, ctx: Context, auth: AuthUser, user_id: uuid.UUID) -> Response[Any]:
        try:
            await commands.delete_user(ctx, auth, user_id)
        except ShoeboxError as e:
            return await self._with_error(ctx, auth, e)
        return see_other("/admin/users")

    async def _with_error(self, ctx: Context, auth: AuthUser, e: ShoeboxError) -> Template:
        async with ctx.engine.connect() as conn:
            users = [queries.user_admin_dto(r) for r in await queries.list_users(conn)]
        status = _status(e)
        return page("users.html", status, me=auth, users=users, error=e.detail, section="admin")


class SettingsPages(Controller):
    path = "/admin/settings"

    @get("/library", opt=requires(Permission.SYSTEM_CONFIG_READ, admin=True))
    async def library(self, ctx: Context, auth: AuthUser) -> Template:
        config = await sysconfig.current(ctx.engine, ctx.settings.scan)
        return _settings_page(auth, config)

    @post("/library", opt=requires(Permission.SYSTEM_CONFIG_UPDATE, admin=True))
    async def save_library(
        self, ctx: Context, auth: AuthUser, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        interval = field(form, "interval")
        config = sysconfig.LibraryConfig(
            scan=sysconfig.LibraryScanConfig(
                enabled=field(form, "scanEnabled") == "on",
                cron_expression=field(form, "cronExpression"),
            ),
            watch=sysconfig.LibraryWatchConfig(
                enabled=field(form, "watchEnabled") == "on",
                use_polling=field(form, "usePolling") == "on",
                interval=int(interval) if interval.isdigit() else -1,
            ),
        )
        try:
            await commands.update_system_config(ctx, config)
        except ShoeboxError as e:
            return _settings_page(auth, config, e.detail, _status(e))
        return see_other("/admin/settings/library")


def _settings_page(
    auth: AuthUser,
    config: sysconfig.LibraryConfig,
    error: str | list[str] | None = None,
    status_code: int = 200,
) -> Template:
    due = sysconfig.next_scan(config, datetime.now(UTC))
    return page(
        "settings_library.html",
        status_code,
        me=auth,
        config=config,
        next_run=due.isoformat() if due is not None else None,
        error=error,
        section="settings",
    )


# --- libraries ------------------------------------------------------------------------------


async def _library_or_404(ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> Any:
    """The library if the caller may see it; a page of somebody else's library is not found."""
    try:
        return await commands.visible_library(ctx, auth, library_id)
    except InvalidInput as e:
        raise NotFound("Library not found") from e


async def _status_context(ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> dict[str, Any]:
    """What the scan status fragment shows: progress, problems, offline assets with reasons."""
    status = await scan_status(ctx, library_id)
    async with ctx.engine.connect() as conn:
        stats = await queries.library_statistics(conn, library_id)
        row = await queries.get_library(conn, library_id)
    offline: list[s.AssetResponseDto] = []
    kept: list[Any] = []
    removable: list[Any] = []
    if status.state != "running":
        kept, removable = await commands.offline_to_remove(ctx, auth, library_id)
        async with ctx.engine.connect() as conn:
            found = await assets.search(
                conn, auth, s.MetadataSearchDto(library_id=library_id, is_offline=True, size=200)
            )
        offline = found.assets.items
    done = status.dirs_done
    total = max(done + status.dirs_pending, 1)
    if status.state != "running":
        done = total
    return {
        "status": status,
        "offline": offline,
        "done": done,
        "total": total,
        "library_id": library_id,
        "stats": stats,
        "kept": len(kept),
        "removable": len(removable),
        "refreshed_at": queries.library_dto(row).refreshed_at if row is not None else None,
    }


async def _progress_events(
    ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
) -> AsyncIterator[ServerSentEventMessage]:
    context = await _status_context(ctx, auth, library_id)
    last = render(request, "_scan_status.html", **context)
    yield ServerSentEventMessage(event="progress", data=last)
    if context["status"].state != "running":
        yield ServerSentEventMessage(event="done", data="done")
        return
    async with scan_changes(ctx, context["status"].scan_id) as changed:
        while True:
            try:
                await asyncio.wait_for(changed.wait(), PROGRESS_QUIET)
            except TimeoutError:
                # Nothing was pushed for a while: say so (proxies close silent streams) and
                # look once, in case an announcement was lost (core NATS is at most once).
                yield ServerSentEventMessage(comment="quiet")
            changed.clear()
            context = await _status_context(ctx, auth, library_id)
            html = render(request, "_scan_status.html", **context)
            if html != last:
                yield ServerSentEventMessage(event="progress", data=html)
                last = html
            if context["status"].state != "running":
                yield ServerSentEventMessage(event="done", data="done")
                return
            # Changes that arrive meanwhile are folded into the next rendering.
            await asyncio.sleep(PROGRESS_COALESCE)


@contextlib.asynccontextmanager
async def scan_changes(ctx: Context, scan_id: str | None) -> AsyncIterator[asyncio.Event]:
    """An event set whenever the scan's progress key changes or the projector commits."""
    changed = asyncio.Event()

    async def on_checkpoint(_: Any) -> None:
        changed.set()

    sub = await ctx.nc.subscribe(checkpoint_subject(ctx.settings.nats), cb=on_checkpoint)
    kv = await ctx.nc.jetstream().key_value(ctx.settings.nats.name("scans"))
    watcher = await kv.watch(str(scan_id))

    async def follow() -> None:
        async for _ in watcher:
            changed.set()

    task = asyncio.create_task(follow())
    try:
        yield changed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        with contextlib.suppress(Exception):
            await watcher.stop()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class LibraryPages(Controller):
    path = "/libraries"

    @get("/", opt=requires(Permission.LIBRARY_READ))
    async def list_libraries(self, ctx: Context, auth: AuthUser) -> Template:
        return await self._list(ctx, auth)

    async def _list(
        self, ctx: Context, auth: AuthUser, error: str | None = None, status: int = 200
    ) -> Template:
        async with ctx.engine.connect() as conn:
            rows = await queries.list_libraries(conn, None if auth.is_admin else auth.id)
            users = {r.id: r for r in await queries.list_users(conn)}
            stats = {r.id: await queries.library_statistics(conn, r.id) for r in rows}
            me = await queries.get_user(conn, auth.id)
        libraries = [
            {
                "dto": queries.library_dto(r),
                "owner": users[r.owner_id].name if r.owner_id in users else "?",
                "stats": stats[r.id],
            }
            for r in rows
        ]
        return page(
            "libraries.html",
            status,
            me=auth,
            libraries=libraries,
            error=error,
            users=list(users.values()),
            external_path=me.external_path if me is not None else None,
            section="libraries",
        )

    @post("/", opt=requires(Permission.LIBRARY_CREATE))
    async def create(
        self, ctx: Context, auth: AuthUser, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        owner = field(form, "ownerId")
        try:
            owner_id = uuid.UUID(owner) if owner and auth.is_admin else auth.id
            dto = s.CreateLibraryDto(owner_id=owner_id, name=field(form, "name") or "New Library")
            library_id = await commands.create_library(ctx, auth, dto)
        except ShoeboxError as e:
            return await self._list(ctx, auth, e.detail, _status(e))
        return see_other(f"/libraries/{library_id}")

    @get("/{library_id:uuid}", opt=requires(Permission.LIBRARY_READ))
    async def detail(self, ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> Template:
        return await self._detail(ctx, auth, library_id)

    async def _detail(
        self,
        ctx: Context,
        auth: AuthUser,
        library_id: uuid.UUID,
        error: str | None = None,
        status_code: int = 200,
        import_paths: list[str] | None = None,
        exclusion_patterns: list[str] | None = None,
    ) -> Template:
        row = await _library_or_404(ctx, auth, library_id)
        library = queries.library_dto(row)
        async with ctx.engine.connect() as conn:
            owner = await queries.get_user(conn, row.owner_id, with_deleted=True)
        return page(
            "library.html",
            status_code,
            me=auth,
            library=library,
            owner=owner,
            error=error,
            import_paths=library.import_paths if import_paths is None else import_paths,
            exclusion_patterns=(
                library.exclusion_patterns if exclusion_patterns is None else exclusion_patterns
            ),
            section="libraries",
            **await _status_context(ctx, auth, library_id),
        )

    @post("/{library_id:uuid}/rename", opt=requires(Permission.LIBRARY_UPDATE))
    async def rename(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        await _library_or_404(ctx, auth, library_id)
        try:
            dto = s.UpdateLibraryDto(name=field(form, "name"))
            await commands.update_library(ctx, auth, library_id, dto)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, _status(e))
        return see_other(f"/libraries/{library_id}")

    @post("/{library_id:uuid}/paths", opt=requires(Permission.LIBRARY_UPDATE))
    async def paths(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        await _library_or_404(ctx, auth, library_id)
        paths, patterns = fields(form, "importPath"), fields(form, "exclusionPattern")
        try:
            dto = s.UpdateLibraryDto(import_paths=paths, exclusion_patterns=patterns)
            await commands.update_library(ctx, auth, library_id, dto)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, _status(e), paths, patterns)
        return see_other(f"/libraries/{library_id}")

    @get("/{library_id:uuid}/validate", opt=requires(Permission.ALL))
    async def validate(
        self,
        ctx: Context,
        auth: AuthUser,
        library_id: uuid.UUID,
        import_path: Annotated[str, QueryParameter(name="importPath")] = "",
    ) -> Template:
        """The live message beside one import path as it is typed (the REST validate rule)."""
        await _library_or_404(ctx, auth, library_id)
        path = import_path.strip()
        message: str | None = None
        if path:
            dto = s.ValidateLibraryDto(import_paths=[path])
            try:
                [(_, message)] = await commands.validate_library(ctx, auth, library_id, dto)
            except ShoeboxError as e:
                message = e.detail if isinstance(e.detail, str) else "; ".join(e.detail)
        return page("_validation.html", path=path, message=message)

    @post("/{library_id:uuid}/scan", opt=requires(Permission.LIBRARY_UPDATE))
    async def scan(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        mode = SCAN_MODES.get(field(form, "mode"), ScanMode.NEW)
        await _library_or_404(ctx, auth, library_id)
        try:
            await commands.request_scan(ctx, auth, library_id, mode)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, _status(e))
        return see_other(f"/libraries/{library_id}")

    @get("/{library_id:uuid}/progress", opt=requires(Permission.LIBRARY_READ))
    async def progress(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> ServerSentEvent:
        """The scan's progress as server-sent events: the status fragment whenever it changes,
        then `done` once the scan is no longer running. Pushed, not polled: the fragment is
        rendered again when the scan's key in the `scans` bucket changes (the scanners' folder
        counts) or the projector commits (the new/changed/missing counts and the end)."""
        await _library_or_404(ctx, auth, library_id)
        return ServerSentEvent(_progress_events(ctx, auth, library_id, request))

    @post("/{library_id:uuid}/remove-offline", opt=requires(Permission.LIBRARY_UPDATE))
    async def remove_offline(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID
    ) -> Response[Any]:
        await _library_or_404(ctx, auth, library_id)
        await commands.remove_offline(ctx, auth, library_id)
        return see_other(f"/libraries/{library_id}")

    @post("/{library_id:uuid}/delete", opt=requires(Permission.LIBRARY_DELETE))
    async def delete(self, ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> Response[Any]:
        await _library_or_404(ctx, auth, library_id)
        try:
            await commands.delete_library(ctx, auth, library_id)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, _status(e))
        return see_other("/libraries")


# --- photos: the timeline and one asset -----------------------------------------------------


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
        preview = assets.thumb_url(dto.id, dto.updated_at, "preview")
        return page("asset.html", me=auth, preview=preview, section="photos", **found)

    @get("/{asset_id:uuid}/full", opt=requires(Permission.ASSET_READ))
    async def full(self, ctx: Context, auth: AuthUser, asset_id: uuid.UUID) -> Template:
        """One photo filling the window: the original where browsers draw its format, else
        the largest rendition; ← and → step through the timeline, Escape goes back."""
        found = await _asset_context(ctx, auth, asset_id)
        dto = found["asset"]
        if dto.type == "VIDEO" or dto.original_mime_type not in BROWSER_IMAGES:
            source = assets.thumb_url(dto.id, dto.updated_at, "preview")
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
        "thumb": assets.thumb_url(row.id, iso(row.updated_at)),
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
        library = queries.library_dto(await _library_or_404(ctx, auth, library_id))
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
        await _library_or_404(ctx, auth, library_id)
        await commands.request_scan(ctx, auth, library_id, mode, path=path)
        return see_other(f"/libraries/{library_id}")


class MapPages(Controller):
    path = "/map"

    @get("/", opt=requires(Permission.MAP_READ))
    async def map(self, ctx: Context, auth: AuthUser) -> Template:
        """Leaflet draws the markers of GET /api/map/markers (static/map.js)."""
        return page("map.html", me=auth, tile_url=ctx.settings.map_tile_url, section="map")


# --- albums -------------------------------------------------------------------------------


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
        album_id = await albums.create_album(ctx, auth, dto)
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
                "thumb": assets.thumb_url(a.id, a.updated_at),
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
            await albums.add_assets(ctx, auth, album_id, _asset_ids(form))
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
            await albums.update_album(ctx, auth, album_id, s.UpdateAlbumDto(album_name=name))
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
            await albums.remove_assets(ctx, auth, album_id, _asset_ids(form))
        except InvalidInput as e:
            raise NotFound("Album not found") from e
        return see_other(f"/albums/{album_id}")

    @post("/{album_id:uuid}/delete", opt=requires(Permission.ALBUM_DELETE))
    async def delete(self, ctx: Context, auth: AuthUser, album_id: uuid.UUID) -> Response[Any]:
        try:
            await albums.delete_album(ctx, auth, album_id)
        except InvalidInput as e:
            raise NotFound("Album not found") from e
        return see_other("/albums")


# --- errors ---------------------------------------------------------------------------------


def _status(e: ShoeboxError) -> int:
    return next((code for cls, code in STATUS.items() if isinstance(e, cls)), 400)


def _caller(request: Request[Any, Any, Any]) -> AuthUser | None:
    user = request.state.get(CALLER)
    return user if isinstance(user, AuthUser) else None


def _sign_in_first(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    if request.headers.get("hx-request"):
        # htmx would swap a redirected sign-in page into the fragment: ask it to navigate.
        return Response(b"", status_code=200, headers={"hx-redirect": "/auth/login"})
    return Redirect("/auth/login")


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, ShoeboxError):
        status, message = _status(exc), exc.detail
    elif isinstance(exc, HTTPException):
        status, message = exc.status_code, exc.detail
    else:
        raise exc
    return page("error.html", status, me=_caller(request), status=status, message=message)


def web_exception_handlers() -> ExceptionHandlersMap:
    """Pages answer with pages: a missing session goes to the sign-in, other errors to an
    error page (never Immich's JSON)."""
    return {
        errors.Unauthorized: _sign_in_first,
        ShoeboxError: _error_page,
        HTTPException: _error_page,
    }


PAGES: list[Any] = [
    home,
    choose_theme,
    AuthPages,
    UserPages,
    SettingsPages,
    LibraryPages,
    PhotoPages,
    AlbumPages,
    MapPages,
    FolderPages,
]
