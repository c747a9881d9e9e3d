"""How the web app plugs into the api service: templates, static files, CSRF, CSP, routes."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import MutableScopeHeaders
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from services.api.auth import public
from services.api.web.pages import PAGES, web_exception_handlers
from services.api.web.render import setup_environment

if TYPE_CHECKING:
    from litestar.types import BeforeMessageSendHookHandler, Message, Scope

    from shared.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


# No inline script or style anywhere: what needs script is /static/*.js and the vendored
# files; thumbnails come from /api on the same origin, map tiles from the configured server.
def content_security_policy(settings: Settings) -> str:
    images = "'self' data: blob:"
    if settings.map_tile_url:
        parts = urlsplit(settings.map_tile_url)
        images += f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


CSRF_COOKIE = "shoebox_csrf"
# Immich's clients never send a CSRF token: the API (bearer, API key, Immich's cookie) is left
# as Immich has it; every form and htmx request outside /api is checked.
CSRF_EXCLUDE = ["^/api/", "^/\\.well-known/"]


def csrf_secret(settings: Settings) -> str:
    """The CSRF signing secret, kept in the data folder so a restart keeps open forms valid
    (an in-memory one when there is no data folder, as in route-walking tests)."""
    data = Path(settings.data_dir)
    if not data.is_dir():
        return secrets.token_hex(32)
    path = data / "web-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret)
        return secret


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=csrf_secret(settings),
        cookie_name=CSRF_COOKIE,
        cookie_samesite="strict",
        exclude=CSRF_EXCLUDE,
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=setup_environment
    )


def security_headers(settings: Settings) -> BeforeMessageSendHookHandler:
    """Every page and static file carries the CSP; /api's answers stay as Immich's."""
    csp = content_security_policy(settings)

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope["path"].startswith("/api/"):
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["content-security-policy"] = csp
        headers["x-content-type-options"] = "nosniff"
        headers["referrer-policy"] = "same-origin"

    return hook


def web_routers() -> list[Any]:
    """The pages at / and the static files at /static (none of them in the OpenAPI document)."""
    return [
        Router(
            "/",
            route_handlers=PAGES,
            include_in_schema=False,
            exception_handlers=web_exception_handlers(),
        ),
        create_static_files_router(
            "/static", directories=[STATIC], opt=public(), include_in_schema=False
        ),
    ]
