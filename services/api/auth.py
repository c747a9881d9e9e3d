"""Who is calling: API key (x-api-key), bearer token, or Immich's access-token cookie."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar import Request
from sqlalchemy import text

from services.api.context import Context
from shared.errors import Forbidden, Unauthorized

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    """A random token for a session or an API key."""
    return secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """Only the SHA-256 of a token is ever recorded."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class AuthUser:
    """The signed-in caller."""

    id: uuid.UUID
    email: str
    name: str
    is_admin: bool
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    permissions: tuple[str, ...] = ("all",)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("Forbidden")

    def require(self, permission: str) -> None:
        """An API key must carry the permission (or `all`), as Immich's; sessions may do all."""
        if (
            self.api_key_id is not None
            and "all" not in self.permissions
            and (permission not in self.permissions)
        ):
            raise Forbidden(f"Missing required permission: {permission}")


_BY_SESSION = text(
    "SELECT u.id, u.email, u.name, u.is_admin, s.id AS sid FROM sessions s "
    "JOIN users u ON u.id = s.user_id WHERE s.token_hash = :h AND u.deleted_at IS NULL"
)
_BY_KEY = text(
    "SELECT u.id, u.email, u.name, u.is_admin, k.id AS kid, k.permissions FROM api_keys k "
    "JOIN users u ON u.id = k.user_id WHERE k.key_hash = :h AND u.deleted_at IS NULL"
)


def _bearer(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get("immich_access_token")


async def authenticate(request: Request[Any, Any, Any], ctx: Context) -> AuthUser:
    """The caller, or Unauthorized("Authentication required")."""
    api_key = request.headers.get("x-api-key")
    bearer = None if api_key else _bearer(request)
    if not api_key and not bearer:
        raise Unauthorized("Authentication required")
    async with ctx.engine.connect() as conn:
        if api_key:
            row = (await conn.execute(_BY_KEY, {"h": token_hash(api_key)})).first()
            if row:
                return AuthUser(
                    row.id,
                    row.email,
                    row.name,
                    row.is_admin,
                    api_key_id=row.kid,
                    permissions=tuple(row.permissions),
                )
        else:
            row = (await conn.execute(_BY_SESSION, {"h": token_hash(bearer or "")})).first()
            if row:
                return AuthUser(row.id, row.email, row.name, row.is_admin, session_id=row.sid)
    raise Unauthorized("Invalid user token" if bearer else "Invalid API key")
