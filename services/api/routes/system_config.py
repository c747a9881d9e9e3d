"""SystemConfigController: /api/system-config (Immich's System Config tag), `library` only."""

from __future__ import annotations

from litestar import Controller, get, put

from services.api import commands
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from shared import sysconfig
from shared.db import scalar


class SystemConfigController(Controller):
    path = "/api/system-config"
    tags = ["System Config"]

    @get("/", operation_id="getConfig", opt=requires(Permission.SYSTEM_CONFIG_READ, admin=True))
    async def get_config(self, ctx: Context) -> s.SystemConfigDto:
        """The configuration in force: what an admin saved, else the environment's defaults."""
        return s.SystemConfigDto(
            library=await sysconfig.current(scalar(ctx.engine), ctx.settings.scan)
        )

    @get(
        "/defaults",
        operation_id="getConfigDefaults",
        opt=requires(Permission.SYSTEM_CONFIG_READ, admin=True),
    )
    async def defaults(self, ctx: Context) -> s.SystemConfigDto:
        """The environment's settings (SHOEBOX_LIBRARY_*), before any admin edit."""
        return s.SystemConfigDto(library=sysconfig.defaults(ctx.settings.scan))

    @put(
        "/",
        operation_id="updateConfig",
        opt=requires(Permission.SYSTEM_CONFIG_UPDATE, admin=True),
    )
    async def update(
        self, ctx: Context, auth: AuthUser, data: s.SystemConfigDto
    ) -> s.SystemConfigDto:
        """Save the library configuration; every replica follows it without a restart."""
        await commands.update_system_config(ctx, data.library)
        return s.SystemConfigDto(library=data.library)
