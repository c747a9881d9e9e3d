"""Projections of the server, users, sessions and API keys."""

from __future__ import annotations

from sqlalchemy import text

from services.projector.projections.base import Increment, Op, Projection
from shared import events as ev
from shared import sysconfig

_SERVER_INIT = text(
    "INSERT INTO server_state (id, admin_id, initialized_at) VALUES (1, :admin_id, :at) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_server_initialized(e: ev.ServerInitialized, seq: int) -> list[Op | Increment]:
    return [(_SERVER_INIT, {"admin_id": e.admin_id, "at": e.occurred_at})]


_SYSTEM_CONFIG = text(
    "INSERT INTO system_config (id, library, updated_at) VALUES (1, :library, :at) "
    "ON CONFLICT (id) DO UPDATE SET library = excluded.library, updated_at = excluded.updated_at"
)


def apply_system_config_updated(e: ev.SystemConfigUpdated, seq: int) -> list[Op | Increment]:
    library = sysconfig.ENCODER.encode(e.library).decode()
    return [(_SYSTEM_CONFIG, {"id": "system-config", "library": library, "at": e.occurred_at})]


_USER_CREATED = text(
    "INSERT INTO users (id, email, name, password_hash, is_admin, should_change_password, "
    "storage_label, quota_size_in_bytes, external_path, created_at, updated_at, last_seq) "
    "VALUES (:id, :email, :name, :password_hash, :is_admin, :should_change_password, "
    ":storage_label, :quota, NULL, :at, :at, :seq) ON CONFLICT (id) DO NOTHING"
)


def _user_row(e: ev.UserCreated | ev.UserUpdated, seq: int) -> dict[str, object]:
    """A user's columns from its creation or an edit (an edit's None leaves a column as is)."""
    return {
        "id": e.stream_id,
        "email": e.email,
        "name": e.name,
        "password_hash": e.password_hash,
        "is_admin": e.is_admin,
        "should_change_password": e.should_change_password,
        "storage_label": e.storage_label,
        "quota": e.quota_size_in_bytes,
        "at": e.occurred_at,
        "seq": seq,
    }


def apply_user_created(e: ev.UserCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _USER_CREATED,
            _user_row(e, seq),
        )
    ]


_USER_UPDATED = text(
    "UPDATE users SET email = coalesce(:email, email), name = coalesce(:name, name), "
    "password_hash = coalesce(:password_hash, password_hash), "
    "is_admin = coalesce(:is_admin, is_admin), "
    "should_change_password = coalesce(:should_change_password, should_change_password), "
    "storage_label = coalesce(:storage_label, storage_label), "
    "quota_size_in_bytes = coalesce(:quota, quota_size_in_bytes), "
    "updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_user_updated(e: ev.UserUpdated, seq: int) -> list[Op | Increment]:
    return [
        (
            _USER_UPDATED,
            _user_row(e, seq),
        )
    ]


_EXTERNAL_PATH = text(
    "UPDATE users SET external_path = :path, updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_external_path_set(e: ev.ExternalPathSet, seq: int) -> list[Op | Increment]:
    return [
        (
            _EXTERNAL_PATH,
            {"id": e.stream_id, "path": e.external_path, "at": e.occurred_at, "seq": seq},
        )
    ]


_USER_DELETED = text(
    "UPDATE users SET deleted_at = :at, updated_at = :at, last_seq = :seq WHERE id = :id"
)
_USER_SESSIONS_DELETED = text("DELETE FROM sessions WHERE user_id = :id")
_USER_KEYS_DELETED = text("DELETE FROM api_keys WHERE user_id = :id")


def apply_user_deleted(e: ev.UserDeleted, seq: int) -> list[Op | Increment]:
    return [
        (_USER_DELETED, {"id": e.stream_id, "at": e.occurred_at, "seq": seq}),
        (_USER_SESSIONS_DELETED, {"id": e.stream_id}),
        (_USER_KEYS_DELETED, {"id": e.stream_id}),
    ]


_SESSION_CREATED = text(
    "INSERT INTO sessions (id, user_id, token_hash, created_at) "
    "VALUES (:id, :user_id, :token_hash, :at) ON CONFLICT (id) DO NOTHING"
)


def apply_session_created(e: ev.SessionCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _SESSION_CREATED,
            {
                "id": e.session_id,
                "user_id": e.stream_id,
                "token_hash": e.token_hash,
                "at": e.occurred_at,
            },
        ),
    ]


_SESSION_ENDED = text("DELETE FROM sessions WHERE id = :id")


def apply_session_ended(e: ev.SessionEnded, seq: int) -> list[Op | Increment]:
    return [
        (_SESSION_ENDED, {"id": e.session_id, "user_id": e.stream_id}),
    ]


_KEY_CREATED = text(
    "INSERT INTO api_keys (id, user_id, name, key_hash, permissions, created_at, updated_at) "
    "VALUES (:id, :user_id, :name, :key_hash, :permissions, :at, :at) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_api_key_created(e: ev.ApiKeyCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _KEY_CREATED,
            {
                "id": e.key_id,
                "user_id": e.stream_id,
                "name": e.name,
                "key_hash": e.key_hash,
                "permissions": list(e.permissions),
                "at": e.occurred_at,
            },
        ),
    ]


_KEY_DELETED = text("DELETE FROM api_keys WHERE id = :id")


def apply_api_key_deleted(e: ev.ApiKeyDeleted, seq: int) -> list[Op | Increment]:
    return [
        (_KEY_DELETED, {"id": e.key_id, "user_id": e.stream_id}),
    ]


PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {
    ev.ServerInitialized: apply_server_initialized,
    ev.SystemConfigUpdated: apply_system_config_updated,
    ev.UserCreated: apply_user_created,
    ev.UserUpdated: apply_user_updated,
    ev.ExternalPathSet: apply_external_path_set,
    ev.UserDeleted: apply_user_deleted,
    ev.SessionCreated: apply_session_created,
    ev.SessionEnded: apply_session_ended,
    ev.ApiKeyCreated: apply_api_key_created,
    ev.ApiKeyDeleted: apply_api_key_deleted,
}
