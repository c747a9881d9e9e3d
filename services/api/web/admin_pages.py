"""Administration > Users and Administration > Settings."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from services.api import commands, queries
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from services.api.web.common import (
    field,
    page,
    see_other,
    status_of,
)
from shared import sysconfig
from shared.db import scalar
from shared.errors import ShoeboxError

log = logging.getLogger(__name__)


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
        status = status_of(e)
        return page("users.html", status, me=auth, users=users, error=e.detail, section="admin")


class SettingsPages(Controller):
    path = "/admin/settings"

    @get("/library", opt=requires(Permission.SYSTEM_CONFIG_READ, admin=True))
    async def library(self, ctx: Context, auth: AuthUser) -> Template:
        config = await sysconfig.current(scalar(ctx.engine), ctx.settings.scan)
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
            return _settings_page(auth, config, e.detail, status_of(e))
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
