"""Events of the server and of users (accounts, sessions, API keys)."""

from __future__ import annotations

import uuid

from shared.events.base import Aggregate, BaseEvent
from shared.sysconfig import LibraryConfig

# --- server ---------------------------------------------------------------------------------


SERVER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


class ServerInitialized(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The first admin signed up; written with expected sequence 0, so it happens once."""

    aggregate = Aggregate.SERVER
    admin_id: uuid.UUID


class SystemConfigUpdated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An admin saved the server's library configuration (scan schedule, watching)."""

    aggregate = Aggregate.SERVER
    library: LibraryConfig


# --- users ----------------------------------------------------------------------------------


class UserCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user account was created (by admin sign-up or by an admin)."""

    aggregate = Aggregate.USER
    email: str
    name: str
    password_hash: str
    is_admin: bool = False
    should_change_password: bool = False
    storage_label: str | None = None
    quota_size_in_bytes: int | None = None


class UserUpdated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An admin or the user changed profile fields; a None field is unchanged."""

    aggregate = Aggregate.USER
    email: str | None = None
    name: str | None = None
    password_hash: str | None = None
    is_admin: bool | None = None
    should_change_password: bool | None = None
    storage_label: str | None = None
    quota_size_in_bytes: int | None = None


class ExternalPathSet(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An admin granted (or, with None, revoked) the folder a user's import paths must lie in."""

    aggregate = Aggregate.USER
    external_path: str | None


class UserDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user was deleted; they can no longer sign in."""

    aggregate = Aggregate.USER


class SessionCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user logged in; only the SHA-256 of the bearer token is recorded."""

    aggregate = Aggregate.USER
    session_id: uuid.UUID
    token_hash: str


class SessionEnded(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user logged out."""

    aggregate = Aggregate.USER
    session_id: uuid.UUID


class ApiKeyCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user created an API key; only the SHA-256 of the secret is recorded."""

    aggregate = Aggregate.USER
    key_id: uuid.UUID
    name: str
    key_hash: str
    permissions: list[str]


class ApiKeyDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user deleted an API key."""

    aggregate = Aggregate.USER
    key_id: uuid.UUID
