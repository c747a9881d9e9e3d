"""UsersController (/api/users) and UsersAdminController (/api/admin/users)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import QueryParameter

from services.api import commands, queries
from services.api import schemas as s
from services.api.auth import AuthUser, Permission, requires
from services.api.context import Context
from shared.errors import InvalidInput


async def _admin_dto(ctx: Context, user_id: uuid.UUID) -> s.UserAdminResponseDto:
    async with ctx.engine.connect() as conn:
        row = await queries.get_user(conn, user_id, with_deleted=True)
    if row is None:
        raise InvalidInput("User not found")
    return queries.user_admin_dto(row)


class UsersController(Controller):
    path = "/api/users"
    tags = ["Users"]

    @get("/me", operation_id="getMyUser", opt=requires(Permission.USER_READ))
    async def me(self, ctx: Context, auth: AuthUser) -> s.UserAdminResponseDto:
        return await _admin_dto(ctx, auth.id)

    @put("/me", operation_id="updateMyUser", opt=requires(Permission.USER_UPDATE))
    async def update_me(
        self, ctx: Context, auth: AuthUser, data: s.UserUpdateMeDto
    ) -> s.UserAdminResponseDto:
        await commands.update_user(ctx, auth.id, data, by_admin=False)
        return await _admin_dto(ctx, auth.id)

    @get("/", operation_id="searchUsers", opt=requires(Permission.USER_READ))
    async def search(self, ctx: Context) -> list[s.UserResponseDto]:
        async with ctx.engine.connect() as conn:
            return [queries.user_dto(r) for r in await queries.list_users(conn)]

    @get("/{user_id:str}", operation_id="getUser", opt=requires(Permission.USER_READ))
    async def get_one(self, ctx: Context, user_id: uuid.UUID) -> s.UserResponseDto:
        async with ctx.engine.connect() as conn:
            row = await queries.get_user(conn, user_id)
        if row is None:
            raise InvalidInput("User not found")
        return queries.user_dto(row)


class UsersAdminController(Controller):
    path = "/api/admin/users"
    tags = ["Users (admin)"]

    @get("/", operation_id="searchUsersAdmin", opt=requires(Permission.ADMIN_USER_READ, admin=True))
    async def search(
        self,
        ctx: Context,
        with_deleted: Annotated[bool, QueryParameter(name="withDeleted")] = False,
    ) -> list[s.UserAdminResponseDto]:
        async with ctx.engine.connect() as conn:
            rows = await queries.list_users(conn, with_deleted=with_deleted)
        return [queries.user_admin_dto(r) for r in rows]

    @post(
        "/",
        operation_id="createUserAdmin",
        status_code=201,
        opt=requires(Permission.ADMIN_USER_CREATE, admin=True),
    )
    async def create(self, ctx: Context, data: s.UserAdminCreateDto) -> s.UserAdminResponseDto:
        user_id = await commands.create_user(
            ctx,
            email=data.email,
            password=data.password,
            name=data.name,
            is_admin=data.is_admin,
            should_change_password=data.should_change_password,
            storage_label=data.storage_label,
            quota=data.quota_size_in_bytes,
            external_path=data.external_path,
        )
        return await _admin_dto(ctx, user_id)

    @get(
        "/{user_id:str}",
        operation_id="getUserAdmin",
        opt=requires(Permission.ADMIN_USER_READ, admin=True),
    )
    async def get_one(self, ctx: Context, user_id: uuid.UUID) -> s.UserAdminResponseDto:
        return await _admin_dto(ctx, user_id)

    @put(
        "/{user_id:str}",
        operation_id="updateUserAdmin",
        opt=requires(Permission.ADMIN_USER_UPDATE, admin=True),
    )
    async def update(
        self, ctx: Context, user_id: uuid.UUID, data: s.UserAdminUpdateDto
    ) -> s.UserAdminResponseDto:
        await commands.update_user(ctx, user_id, data, by_admin=True)
        return await _admin_dto(ctx, user_id)

    @delete(
        "/{user_id:str}",
        operation_id="deleteUserAdmin",
        status_code=200,
        opt=requires(Permission.ADMIN_USER_DELETE, admin=True),
    )
    async def delete_one(
        self, ctx: Context, auth: AuthUser, user_id: uuid.UUID
    ) -> s.UserAdminResponseDto:
        await commands.delete_user(ctx, auth, user_id)
        return await _admin_dto(ctx, user_id)
