"""Handlers of users, sessions and API keys: load the user, decide (decide/users.py), publish."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from services.api import queries
from services.api.auth import hash_password, new_secret, token_hash, verify_password
from services.api.commands.publish import carry_out
from services.api.decide import accepted
from services.api.decide import users as decide
from shared import events as ev

if TYPE_CHECKING:
    from sqlalchemy import Row

    from services.api import schemas as s
    from services.api.auth import AuthUser
    from services.api.context import Context


def user_state(row: Row[Any] | None) -> decide.UserState | None:
    """The rules' view of a user's read-model row."""
    return None if row is None else decide.UserState(row.id, row.last_seq)


async def create_user(
    ctx: Context,
    *,
    email: str,
    password: str,
    name: str,
    is_admin: bool = False,
    should_change_password: bool = False,
    storage_label: str | None = None,
    quota: int | None = None,
    external_path: str | None = None,
) -> uuid.UUID:
    """A user and their upload library, created together."""
    cmd = decide.NewUser(
        uuid.uuid4(),
        email,
        password,
        name,
        is_admin,
        should_change_password,
        storage_label,
        quota,
        external_path,
    )
    async with ctx.engine.connect() as conn:
        taken = await queries.get_user_by_email(conn, email) is not None
    await carry_out(ctx, decide.create_user(cmd, email_taken=taken, hash_password=hash_password))
    return cmd.user_id


async def login(ctx: Context, user_id: uuid.UUID) -> str:
    """Open a session; returns the bearer token (only its hash is recorded)."""
    secret = new_secret()
    seq = await ctx.bus.publish(
        ev.SessionCreated(stream_id=user_id, session_id=uuid.uuid4(), token_hash=token_hash(secret))
    )
    await ctx.settle(seq)
    return secret


async def password_login(ctx: Context, email: str, password: str) -> tuple[Any, str]:
    """Check a user's password and open a session: (the user's row, the session's token)."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_user_by_email(conn, email)
    ok = row is not None and verify_password(row.password_hash, password)
    accepted(decide.password_login(None if row is None else row.id, ok))
    assert row is not None
    return row, await login(ctx, row.id)


async def logout(ctx: Context, user: AuthUser) -> None:
    """End the caller's session (an API key has none)."""
    if user.session_id is None:
        return
    await ctx.settle(
        await ctx.bus.publish(ev.SessionEnded(stream_id=user.id, session_id=user.session_id))
    )


async def create_api_key(
    ctx: Context, user: AuthUser, name: str, permissions: list[str]
) -> tuple[str, uuid.UUID]:
    """A new key of the caller's; returns (its secret, its id)."""
    secret = new_secret()
    key_id = uuid.uuid4()
    outcome = decide.create_api_key(
        user, name, permissions, key_id=key_id, key_hash=token_hash(secret)
    )
    await carry_out(ctx, outcome)
    return secret, key_id


async def delete_api_key(ctx: Context, user: AuthUser, key_id: uuid.UUID) -> None:
    """Delete one of the caller's keys."""
    await ctx.settle(await ctx.bus.publish(ev.ApiKeyDeleted(stream_id=user.id, key_id=key_id)))


async def update_user(
    ctx: Context,
    user_id: uuid.UUID,
    dto: s.UserAdminUpdateDto | s.UserUpdateMeDto,
    *,
    by_admin: bool,
) -> None:
    """Apply a partial update; `externalPath` only from an admin."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_user(conn, user_id)
        other = None
        if row is not None and dto.email is not UNSET:
            other = await queries.get_user_by_email(conn, dto.email)
    outcome = decide.update_user(
        user_state(row),
        dto,
        email_owner=None if other is None else other.id,
        by_admin=by_admin,
        hash_password=hash_password,
    )
    await carry_out(ctx, outcome)


async def delete_user(ctx: Context, actor: AuthUser, user_id: uuid.UUID) -> None:
    """An admin deletes another user."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_user(conn, user_id)
    await carry_out(ctx, decide.delete_user(actor, user_state(row), user_id))
