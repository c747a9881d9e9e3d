"""Composition root of the API: build_app(settings) -> Litestar."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Router, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from services.api.auth import AuthUser, access_guard, current_user, public
from services.api.context import Context
from services.api.edge import EdgeRequest, refuse_unstorable_params
from services.api.errors import EXCEPTION_HANDLERS
from services.api.openapi import document_errors
from services.api.routes.albums import AlbumController
from services.api.routes.assets import AssetController, SearchController
from services.api.routes.auth import APIKeyController, AuthController
from services.api.routes.libraries import LibraryController
from services.api.routes.server import ServerController
from services.api.routes.system_config import SystemConfigController
from services.api.routes.timeline import MapController, TimelineController
from services.api.routes.users import UsersAdminController, UsersController
from services.api.web.app import csrf_config, security_headers, template_config, web_routers
from shared.bus import EventBus, connect, ensure_streams
from shared.checkpoint import follow_checkpoint
from shared.db import create_engine, wait_for_schema
from shared.settings import Settings

log = logging.getLogger(__name__)

CONTROLLERS: list[type[Any]] = [
    ServerController,
    AuthController,
    APIKeyController,
    UsersController,
    UsersAdminController,
    LibraryController,
    AssetController,
    SearchController,
    AlbumController,
    TimelineController,
    MapController,
    SystemConfigController,
]


@get("/.well-known/immich", include_in_schema=False, opt=public())
async def well_known() -> dict[str, Any]:
    """Immich's clients look here to find the API."""
    return {"api": {"endpoint": "/api"}}


async def open_context(settings: Settings) -> Context:
    """Connect to NATS and PostgreSQL and start following the projector's checkpoint."""
    nc = await connect(settings.nats, "api")
    engine = create_engine(settings.db.url)
    await ensure_streams(nc.jetstream(), settings.nats)
    waiter = await follow_checkpoint(nc, settings.nats, engine)
    thumbs = await nc.jetstream().object_store(settings.nats.name("thumbs"))
    return Context(
        settings=settings,
        engine=engine,
        nc=nc,
        bus=EventBus(nc, settings.nats),
        waiter=waiter,
        thumbs=thumbs,
    )


async def close_context(ctx: Context) -> None:
    await ctx.nc.drain()
    await ctx.engine.dispose()


def build_app(settings: Settings, ctx: Context | None = None) -> Litestar:
    """The Litestar app; with `ctx`, reuse connections the caller owns (tests)."""
    holder: dict[str, Context] = {} if ctx is None else {"ctx": ctx}

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if ctx is not None:
            yield
            return
        holder["ctx"] = await open_context(settings)
        try:
            # Serve only once the projector has created the schema (a first start may race it).
            await wait_for_schema(holder["ctx"].engine)
            yield
        finally:
            await close_context(holder["ctx"])

    def provide_ctx() -> Context:
        return holder["ctx"]

    def provide_auth(request: Request[Any, Any, Any]) -> AuthUser:
        return current_user(request)

    app = Litestar(
        route_handlers=[well_known, *CONTROLLERS, *web_routers()],
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "auth": Provide(provide_auth, sync_to_thread=False),
        },
        # Every route declares its access (services/api/auth.py); this guard enforces it, and
        # guards run before anything reads the body: a body is read only for a caller who may
        # send it. Then no parameter may hold what the read models cannot store (edge.py).
        guards=[access_guard(provide_ctx), refuse_unstorable_params],
        request_class=EdgeRequest,
        exception_handlers=EXCEPTION_HANDLERS,
        # The web app (services/api/web): pages at /, CSRF on everything outside /api, CSP.
        template_config=template_config(),
        csrf_config=csrf_config(settings),
        before_send=[security_headers(settings)],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Shoebox",
            version="1.0.0",
            openapi_router=Router(
                "/api/docs", route_handlers=[], opt=public(), include_in_schema=False
            ),
        ),
        # JSON bodies are small; the upload (POST /api/assets) streams and has its own bound.
        request_max_body_size=settings.max_json_size,
        # Logging is the service's (shared.service.setup_logging, SHOEBOX_LOG_LEVEL): Litestar's
        # default would reset the root logger to INFO.
        logging_config=None,
        debug=False,
    )
    document_errors(app)
    return app
