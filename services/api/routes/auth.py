"""AuthenticationController and APIKeyController: sign-up, login, logout, API keys."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, delete, get, post
from sqlalchemy import Row

from services.api import commands, queries
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, public, requires, signed_in
from services.api.context import Context
from services.api.schemas import iso
from shared.errors import InvalidInput

SESSION_COOKIES = ("immich_access_token", "immich_auth_type", "immich_is_authenticated")


def set_session_cookies(response: Response[Any], token: str) -> None:
    """Immich's session cookies, which `auth.authenticate` reads (the web app sets them too)."""
    response.set_cookie("immich_access_token", token, httponly=True, samesite="lax")
    response.set_cookie("immich_auth_type", "password", httponly=True, samesite="lax")
    response.set_cookie("immich_is_authenticated", "true", samesite="lax")


class AuthController(Controller):
    path = "/api/auth"
    tags = ["Authentication"]

    @post("/admin-sign-up", operation_id="signUpAdmin", status_code=201, opt=public())
    async def admin_sign_up(self, ctx: Context, data: s.SignUpDto) -> s.UserAdminResponseDto:
        user_id = await commands.admin_sign_up(ctx, data)
        async with ctx.engine.connect() as conn:
            row = await queries.get_user(conn, user_id)
        return queries.user_admin_dto(row)  # type: ignore[arg-type]

    @post("/login", operation_id="login", status_code=201, opt=public())
    async def login(self, ctx: Context, data: s.LoginCredentialDto) -> Response[s.LoginResponseDto]:
        row, token = await commands.password_login(ctx, data.email, data.password)
        body = s.LoginResponseDto(
            access_token=token,
            user_id=str(row.id),
            user_email=row.email,
            name=row.name,
            is_admin=row.is_admin,
            should_change_password=row.should_change_password,
        )
        response = Response(body, status_code=201)
        set_session_cookies(response, token)
        return response

    # Immich names no permission here, so a key needs `all`.
    @post("/logout", operation_id="logout", status_code=200, opt=requires(Permission.ALL))
    async def logout(self, ctx: Context, auth: AuthUser) -> s.LogoutResponseDto:
        await commands.logout(ctx, auth)
        return s.LogoutResponseDto(successful=True)

    @post("/validateToken", operation_id="validateAccessToken", status_code=200, opt=signed_in())
    async def validate_token(self) -> s.ValidateAccessTokenResponseDto:
        return s.ValidateAccessTokenResponseDto(auth_status=True)


class APIKeyController(Controller):
    path = "/api/api-keys"
    tags = ["API Keys"]

    @post(
        "/", operation_id="createApiKey", status_code=201, opt=requires(Permission.API_KEY_CREATE)
    )
    async def create(
        self, ctx: Context, auth: AuthUser, data: s.APIKeyCreateDto
    ) -> s.APIKeyCreateResponseDto:
        secret, key_id = await commands.create_api_key(ctx, auth, data.name, data.permissions)
        return s.APIKeyCreateResponseDto(secret=secret, api_key=await _key_dto(ctx, key_id))

    @get("/", operation_id="getApiKeys", opt=requires(Permission.API_KEY_READ))
    async def list(self, ctx: Context, auth: AuthUser) -> list[s.APIKeyResponseDto]:
        async with ctx.engine.connect() as conn:
            return [_dto(r) for r in await queries.api_keys_of(conn, auth.id)]

    @get("/me", operation_id="getMyApiKey", opt=signed_in())
    async def me(self, ctx: Context, auth: AuthUser) -> s.APIKeyResponseDto:
        if auth.api_key_id is None:
            raise InvalidInput("Not authenticated with an API key")
        return await _key_dto(ctx, auth.api_key_id)

    @get("/{key_id:str}", operation_id="getApiKey", opt=requires(Permission.API_KEY_READ))
    async def get_one(self, ctx: Context, auth: AuthUser, key_id: uuid.UUID) -> s.APIKeyResponseDto:
        return await _key_dto(ctx, key_id, auth.id)

    @delete(
        "/{key_id:str}",
        operation_id="deleteApiKey",
        status_code=204,
        opt=requires(Permission.API_KEY_DELETE),
    )
    async def delete_one(self, ctx: Context, auth: AuthUser, key_id: uuid.UUID) -> None:
        await _key_dto(ctx, key_id, auth.id)
        await commands.delete_api_key(ctx, auth, key_id)


def _dto(row: Row[Any]) -> s.APIKeyResponseDto:
    return s.APIKeyResponseDto(
        id=str(row.id),
        name=row.name,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        permissions=list(row.permissions),
    )


async def _key_dto(
    ctx: Context, key_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> s.APIKeyResponseDto:
    async with ctx.engine.connect() as conn:
        row = await queries.api_key(conn, key_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise InvalidInput("API Key not found")
    return _dto(row)
