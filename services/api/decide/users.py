"""Decisions on users, their sessions and API keys, and the admin's sign-up."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from msgspec import UNSET

from services.api.decide import Refusal, Write, fields_refusal, refuse
from services.api.decide.libraries import upload_library
from shared import events as ev
from shared.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from shared.paths import strip_trailing_slash, validate_external_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.api import schemas as s
    from services.api.auth import AuthUser

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

ADMIN_ONLY = ("is_admin", "should_change_password", "storage_label", "quota_size_in_bytes")
"""Fields of a user only an admin changes."""


def field_problems(email: str | None, password: str | None, name: str | None) -> Refusal | None:
    """Immich's DTO rules on a user's e-mail, password and name (None: not given)."""
    problems = []
    if email is not None and not _EMAIL.match(email):
        problems.append("email must be an email")
    if password is not None and not password:
        problems.append("password should not be empty")
    if name is not None and not name.strip():
        problems.append("name should not be empty")
    return fields_refusal(problems)


@dataclass(frozen=True)
class UserState:
    """A user as the read model holds them (only what the rules need)."""

    id: uuid.UUID
    last_seq: int


@dataclass(frozen=True)
class NewUser:
    """Create a user (an admin's command, or the web app's)."""

    user_id: uuid.UUID
    email: str
    password: str
    name: str
    is_admin: bool = False
    should_change_password: bool = False
    storage_label: str | None = None
    quota: int | None = None
    external_path: str | None = None


def create_user(
    cmd: NewUser, *, email_taken: bool, hash_password: Callable[[str], str]
) -> list[Write] | Refusal:
    """A user and their upload library, each a new aggregate (expected 0): one upload library
    per user, since its id is a function of the user's."""
    if refusal := field_problems(cmd.email, cmd.password, cmd.name):
        return refusal
    path = None if cmd.external_path is None else strip_trailing_slash(cmd.external_path)
    if path is not None and (msg := validate_external_path(path)):
        return refuse(InvalidInput, msg)
    if email_taken:
        return refuse(InvalidInput, "User exists")
    created: list[ev.BaseEvent] = [
        ev.UserCreated(
            stream_id=cmd.user_id,
            email=cmd.email,
            name=cmd.name,
            password_hash=hash_password(cmd.password),
            is_admin=cmd.is_admin,
            should_change_password=cmd.should_change_password,
            storage_label=cmd.storage_label,
            quota_size_in_bytes=cmd.quota,
        )
    ]
    if path is not None:
        created.append(ev.ExternalPathSet(stream_id=cmd.user_id, external_path=path))
    return [Write(tuple(created), 0), Write((upload_library(cmd.user_id),), 0)]


def update_user(
    user: UserState | None,
    dto: s.UserAdminUpdateDto | s.UserUpdateMeDto,
    *,
    email_owner: uuid.UUID | None,
    by_admin: bool,
    hash_password: Callable[[str], str],
) -> Write | Refusal | None:
    """A partial update on the user as last read; `externalPath` and the admin's fields only
    from an admin. None: nothing changes."""
    if user is None:
        return refuse(InvalidInput, "User not found")
    email = None if dto.email is UNSET else dto.email
    if email is not None and email_owner is not None and email_owner != user.id:
        return refuse(Conflict, "Email already in use by another account")
    password = None if dto.password is UNSET else dto.password
    name = None if dto.name is UNSET else dto.name
    if refusal := field_problems(email, password, name):
        return refusal
    fields: dict[str, object] = {}
    if email is not None:
        fields["email"] = email
    if name is not None:
        fields["name"] = name
    if password is not None:
        fields["password_hash"] = hash_password(password)
    events: list[ev.BaseEvent] = []
    external = getattr(dto, "external_path", UNSET)
    if external is not UNSET:
        if not by_admin:
            return refuse(Forbidden, "Only an admin can set a user's external path")
        path = None if external is None else strip_trailing_slash(external)
        if path is not None and (msg := validate_external_path(path)):
            return refuse(InvalidInput, msg)
        events.append(ev.ExternalPathSet(stream_id=user.id, external_path=path))
    for attr in ADMIN_ONLY:
        value = getattr(dto, attr, UNSET)
        if value is not UNSET:
            if not by_admin:
                return refuse(Forbidden, f"Only an admin can change {attr}")
            fields[attr] = value
    if fields:
        events.insert(0, ev.UserUpdated(stream_id=user.id, **fields))  # type: ignore[arg-type]
    return Write(tuple(events), user.last_seq) if events else None


def delete_user(actor: AuthUser, user: UserState | None, user_id: uuid.UUID) -> Write | Refusal:
    """An admin deletes another user (never themself), as last read."""
    if actor.id == user_id:
        return refuse(InvalidInput, "Cannot delete your own account")
    if user is None:
        return refuse(InvalidInput, "User not found")
    return Write((ev.UserDeleted(stream_id=user_id),), user.last_seq)


def password_login(user_id: uuid.UUID | None, password_ok: bool) -> Refusal | None:
    """A session opens only for a known e-mail with its password (one message for both)."""
    if user_id is None or not password_ok:
        return refuse(Unauthorized, "Incorrect email or password")
    return None


def create_api_key(
    actor: AuthUser, name: str, permissions: list[str], *, key_id: uuid.UUID, key_hash: str
) -> Write | Refusal:
    """A key never holds more than its maker may do (Immich: 400)."""
    if not permissions:
        return refuse(InvalidInput, "permissions should not be empty")
    if not actor.granted(permissions):
        return refuse(InvalidInput, "Cannot grant permissions you do not have")
    created = ev.ApiKeyCreated(
        stream_id=actor.id,
        key_id=key_id,
        name=name or "API Key",
        key_hash=key_hash,
        permissions=list(permissions),
    )
    return Write((created,), None)
