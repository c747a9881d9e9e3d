"""Libraries: create, edit, validate, scan with pushed progress, remove offline, delete."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from services.api import assets, commands, queries
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from services.api.scans import scan_status
from services.api.schemas import iso
from services.api.web.common import (
    PROGRESS_COALESCE,
    PROGRESS_QUIET,
    SCAN_MODES,
    field,
    fields,
    library_or_404,
    page,
    see_other,
    status_of,
)
from services.api.web.render import render
from shared.checkpoint import checkpoint_subject
from shared.errors import ShoeboxError
from shared.events import ScanMode

log = logging.getLogger(__name__)


async def _status_context(ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> dict[str, Any]:
    """What the scan status fragment shows: progress, problems, offline assets with reasons."""
    status = await scan_status(ctx, library_id)
    async with ctx.engine.connect() as conn:
        stats = await queries.library_statistics(conn, library_id)
        row = await queries.get_library(conn, library_id, counted=False)
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
        "refreshed_at": iso(row.refreshed_at) if row is not None else None,
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
            return await self._list(ctx, auth, e.detail, status_of(e))
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
        row = await library_or_404(ctx, auth, library_id, counted=True)
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
        await library_or_404(ctx, auth, library_id)
        try:
            dto = s.UpdateLibraryDto(name=field(form, "name"))
            await commands.update_library(ctx, auth, library_id, dto)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, status_of(e))
        return see_other(f"/libraries/{library_id}")

    @post("/{library_id:uuid}/paths", opt=requires(Permission.LIBRARY_UPDATE))
    async def paths(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> Response[Any]:
        form = await request.form()
        await library_or_404(ctx, auth, library_id)
        paths, patterns = fields(form, "importPath"), fields(form, "exclusionPattern")
        try:
            dto = s.UpdateLibraryDto(import_paths=paths, exclusion_patterns=patterns)
            await commands.update_library(ctx, auth, library_id, dto)
        except ShoeboxError as e:
            return await self._detail(
                ctx, auth, library_id, e.detail, status_of(e), paths, patterns
            )
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
        await library_or_404(ctx, auth, library_id)
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
        await library_or_404(ctx, auth, library_id)
        try:
            await commands.request_scan(ctx, auth, library_id, mode)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, status_of(e))
        return see_other(f"/libraries/{library_id}")

    @get("/{library_id:uuid}/progress", opt=requires(Permission.LIBRARY_READ))
    async def progress(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID, request: Request[Any, Any, Any]
    ) -> ServerSentEvent:
        """The scan's progress as server-sent events: the status fragment whenever it changes,
        then `done` once the scan is no longer running. Pushed, not polled: the fragment is
        rendered again when the scan's key in the `scans` bucket changes (the scanners' folder
        counts) or the projector commits (the new/changed/missing counts and the end)."""
        await library_or_404(ctx, auth, library_id)
        return ServerSentEvent(_progress_events(ctx, auth, library_id, request))

    @post("/{library_id:uuid}/remove-offline", opt=requires(Permission.LIBRARY_UPDATE))
    async def remove_offline(
        self, ctx: Context, auth: AuthUser, library_id: uuid.UUID
    ) -> Response[Any]:
        await library_or_404(ctx, auth, library_id)
        await commands.remove_offline(ctx, auth, library_id)
        return see_other(f"/libraries/{library_id}")

    @post("/{library_id:uuid}/delete", opt=requires(Permission.LIBRARY_DELETE))
    async def delete(self, ctx: Context, auth: AuthUser, library_id: uuid.UUID) -> Response[Any]:
        await library_or_404(ctx, auth, library_id)
        try:
            await commands.delete_library(ctx, auth, library_id)
        except ShoeboxError as e:
            return await self._detail(ctx, auth, library_id, e.detail, status_of(e))
        return see_other("/libraries")
