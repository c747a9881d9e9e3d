"""The web app's first run, sign-in, sign-out, home and theme pages."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from services.api import commands
from services.api import schemas as s
from services.api.auth import AuthUser, public, signed_in
from services.api.context import Context
from services.api.routes.auth import SESSION_COOKIES, set_session_cookies
from services.api.web.common import (
    field,
    initialized,
    page,
    see_other,
)
from shared.errors import InvalidInput, ShoeboxError, Unauthorized

log = logging.getLogger(__name__)


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
