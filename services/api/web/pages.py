"""The web app's pages, one module per area (this one: error pages and the list of them).

Each handler calls the same commands and queries as the REST routes.

Forms post and redirect (they work without script); htmx swaps server-rendered fragments for
the live path validation, the lazily loaded timeline months and the scan progress (SSE).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from services.api.auth import CALLER, AuthUser
from services.api.web.admin_pages import SettingsPages, UserPages
from services.api.web.album_pages import AlbumPages
from services.api.web.auth_pages import AuthPages, choose_theme, home
from services.api.web.common import page, status_of
from services.api.web.library_pages import LibraryPages
from services.api.web.photo_pages import FolderPages, MapPages, PhotoPages
from shared import errors
from shared.errors import ShoeboxError


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
        status, message = status_of(exc), exc.detail
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
