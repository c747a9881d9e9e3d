"""UsersController (/api/users) and UsersAdminController (/api/admin/users)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import QueryParameter

from services.api import commands, queries
from services.api import schemas as s
from services.api.auth import AuthUser
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

    @get("/me", operation_id="getMyUser")
    async def me(self, ctx: Context, auth: AuthUser) -> s.UserAdminResponseDto:
        return await _admin_dto(ctx, auth.id)

    @put("/me", operation_id="updateMyUser")
    async def update_me(
        self, ctx: Context, auth: AuthUser, data: s.UserUpdateMeDto
    ) -> s.UserAdminResponseDto:
        await commands.update_user(ctx, auth.id, data, by_admin=False)
        return await _admin_dto(ctx, auth.id)

    @get("/", operation_id="searchUsers")
    async def search(self, ctx: Context, auth: AuthUser) -> list[s.UserResponseDto]:
        async with ctx.engine.connect() as conn:
            return [queries.user_dto(r) for r in await queries.list_users(conn)]

    @get("/{user_id:uuid}", operation_id="getUser")
    async def get_one(self, ctx: Context, auth: AuthUser, user_id: uuid.UUID) -> s.UserResponseDto:
        async with ctx.engine.connect() as conn:
            row = await queries.get_user(conn, user_id)
        if row is None:
            raise InvalidInput("User not found")
        return queries.user_dto(row)


class UsersAdminController(Controller):
    path = "/api/admin/users"
    tags = ["Users (admin)"]

    @get("/", operation_id="searchUsersAdmin")
    async def search(
        self,
        ctx: Context,
        admin: AuthUser,
        with_deleted: Annotated[bool, QueryParameter(name="withDeleted")] = False,
    ) -> list[s.UserAdminResponseDto]:
        async with ctx.engine.connect() as conn:
            rows = await queries.list_users(conn, with_deleted=with_deleted)
        return [queries.user_admin_dto(r) for r in rows]

    @post("/", operation_id="createUserAdmin", status_code=201)
    async def create(
        self, ctx: Context, admin: AuthUser, data: s.UserAdminCreateDto
    ) -> s.UserAdminResponseDto:
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

    @get("/{user_id:uuid}", operation_id="getUserAdmin")
    async def get_one(
        self, ctx: Context, admin: AuthUser, user_id: uuid.UUID
    ) -> s.UserAdminResponseDto:
        return await _admin_dto(ctx, user_id)

    @put("/{user_id:uuid}", operation_id="updateUserAdmin")
    async def update(
        self, ctx: Context, admin: AuthUser, user_id: uuid.UUID, data: s.UserAdminUpdateDto
    ) -> s.UserAdminResponseDto:
        await commands.update_user(ctx, user_id, data, by_admin=True)
        return await _admin_dto(ctx, user_id)

    @delete("/{user_id:uuid}", operation_id="deleteUserAdmin", status_code=200)
    async def delete_one(
        self, ctx: Context, admin: AuthUser, user_id: uuid.UUID
    ) -> s.UserAdminResponseDto:
        await commands.delete_user(ctx, admin, user_id)
        return await _admin_dto(ctx, user_id)
