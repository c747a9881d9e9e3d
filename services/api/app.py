"""Composition root of the API: build_app(settings) -> Litestar."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import ImproperlyConfiguredException
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.api.auth import AuthUser, access_guard, current_user, public
from services.api.context import Context
from services.api.deadletters import DeadLetterController
from services.api.edge import EdgeRequest, refuse_unstorable_params
from services.api.errors import EXCEPTION_HANDLERS
from services.api.live import LiveUpdates
from services.api.openapi import document_errors
from services.api.routes.albums import AlbumController
from services.api.routes.assets import AssetController, SearchController, TrashController
from services.api.routes.auth import APIKeyController, AuthController
from services.api.routes.jobs import JobController
from services.api.routes.libraries import LibraryController
from services.api.routes.server import ServerController
from services.api.routes.system_config import SystemConfigController
from services.api.routes.timeline import MapController, TimelineController
from services.api.routes.users import UsersAdminController, UsersController
from services.api.web.app import csrf_config, security_headers, template_config, web_routers
from shared import trace
from shared.bus import EventBus, connect, ensure_streams
from shared.checkpoint import follow_checkpoint
from shared.db import create_engine, scalar, wait_for_schema
from shared.health import Health, beat, database_check, nats_check, readiness_response
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
    TrashController,
    AlbumController,
    TimelineController,
    MapController,
    SystemConfigController,
    JobController,
    DeadLetterController,
]


@get("/.well-known/immich", include_in_schema=False, opt=public())
async def well_known() -> dict[str, Any]:
    """Immich's clients look here to find the API."""
    return {"api": {"endpoint": "/api"}}


def correlate(app: ASGIApp) -> ASGIApp:
    """Give every request a correlation id (the X-Correlation-Id request header when it is a
    sane one, else a new one): it is answered in X-Correlation-Id and in error bodies, and
    rides on the request's log lines and events (shared/trace.py)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-correlation-id", b"").decode("latin-1")
        cid = given if given.isalnum() and len(given) <= 64 else trace.new_correlation_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", cid.encode()),
                ]
            await send(message)

        with trace.acting("anonymous", cid):
            await app(scope, receive, send_with_id)

    return middleware


async def _health_response(health: Health, path: str) -> Response[bytes]:
    status, body = await readiness_response(health, path)
    return Response(body, status_code=status, media_type="application/json")


async def open_context(settings: Settings) -> Context:
    """Connect to NATS and PostgreSQL and start following the projector's checkpoint."""
    nc = await connect(settings.nats, "api")
    engine = create_engine(settings.db.url)
    await ensure_streams(nc, settings.nats)
    waiter = await follow_checkpoint(nc, settings.nats, scalar(engine))
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

    def provide_ctx() -> Context:
        return holder["ctx"]

    # Immich's live updates at /api/socket.io (services/api/live.py, decision 0019).
    live_updates = LiveUpdates(provide_ctx)
    health = Health("api")

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if ctx is None:
            holder["ctx"] = await open_context(settings)
        live = holder["ctx"]
        health.add("nats", nats_check(live.nc))
        # The table the projector creates with the schema: until it exists, a sign-up fails.
        health.add("postgres", database_check(scalar(live.engine), "projection_checkpoint"))
        stop = asyncio.Event()
        beating = asyncio.create_task(beat(live.nc, settings.nats, health, stop))
        try:
            # Serve only once the projector has created the schema (a first start may race it);
            # a caller that brings its own connections (tests) has made the schema already.
            if ctx is None:
                await wait_for_schema(live.engine)
            yield
        finally:
            stop.set()
            await beating
            await live_updates.close()
            if ctx is None:
                await close_context(live)

    @get("/livez", include_in_schema=False, opt=public())
    async def livez() -> Response[bytes]:
        """Liveness: the process answers (shared/health.py has the contract)."""
        return await _health_response(health, "/livez")

    @get("/readyz", include_in_schema=False, opt=public())
    async def readyz() -> Response[bytes]:
        """Readiness: NATS and PostgreSQL answer and the read-model schema exists."""
        return await _health_response(health, "/readyz")

    def provide_auth(request: Request[Any, Any, Any]) -> AuthUser:
        return current_user(request)

    app = Litestar(
        route_handlers=[
            well_known,
            livez,
            readyz,
            live_updates.route(),
            *CONTROLLERS,
            *web_routers(),
        ],
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "auth": Provide(provide_auth, sync_to_thread=False),
        },
        # Every route declares its access (services/api/auth.py); this guard enforces it, and
        # guards run before anything reads the body: a body is read only for a caller who may
        # send it. Then no parameter may hold what the read models cannot store (edge.py).
        guards=[access_guard(provide_ctx), refuse_unstorable_params],
        request_class=EdgeRequest,
        middleware=[correlate],
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
    _refuse_uuid_path_types(app)
    return app


def _refuse_uuid_path_types(app: Litestar) -> None:
    """Ids in API paths are declared `{x:str}` with a `uuid.UUID` annotation: the router would
    answer a malformed `{x:uuid}` with 404 before any guard ran, where Immich's UUID pipe
    answers 400 `id must be a UUID` after authenticating (services/api/validation.py)."""
    wrong = [r.path for r in app.routes if r.path.startswith("/api/") and ":uuid}" in r.path]
    if wrong:
        raise ImproperlyConfiguredException(
            f"declare ids in API paths as {{name:str}} with a uuid.UUID annotation: {wrong}"
        )
