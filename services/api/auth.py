"""Who is calling (API key, bearer token or Immich's cookie) and what each route lets them do.

Every route handler declares its access in `opt`: `requires(Permission.X)` (optionally
`admin=True`), `signed_in()` or `public()`, like Immich's `@Authenticated({permission, admin})`.
One guard, `access_guard`, reads that declaration for every request before the handler (and its
body) is touched; the `auth` dependency only hands over the caller the guard let in.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard
from sqlalchemy import text

from services.api.context import Context
from shared import trace
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
    """A random token for a session or an API key: 32 random bytes in base64 with its
    `+`, `/` and `=` dropped, as Immich makes them, so only letters and digits. A secret
    of `token_urlsafe` could begin with `-`, and `immich login URL -Xy…` then reads it
    as an unknown option."""
    return base64.b64encode(secrets.token_bytes(32)).translate(None, b"+/=").decode()


def token_hash(secret: str) -> str:
    """Only the SHA-256 of a token is ever recorded."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Permission(enum.StrEnum):
    """The API-key permissions of Immich (server/src/enum.ts) that Shoebox's routes ask for."""

    ALL = "all"
    API_KEY_CREATE = "apiKey.create"
    API_KEY_READ = "apiKey.read"
    API_KEY_DELETE = "apiKey.delete"
    ASSET_READ = "asset.read"
    ASSET_DELETE = "asset.delete"
    ASSET_UPDATE = "asset.update"
    ASSET_STATISTICS = "asset.statistics"
    ASSET_VIEW = "asset.view"
    ASSET_DOWNLOAD = "asset.download"
    ASSET_UPLOAD = "asset.upload"
    ALBUM_CREATE = "album.create"
    ALBUM_READ = "album.read"
    ALBUM_UPDATE = "album.update"
    ALBUM_DELETE = "album.delete"
    ALBUM_STATISTICS = "album.statistics"
    ALBUM_ASSET_CREATE = "albumAsset.create"
    ALBUM_ASSET_DELETE = "albumAsset.delete"
    JOB_READ = "job.read"
    LIBRARY_CREATE = "library.create"
    LIBRARY_READ = "library.read"
    LIBRARY_UPDATE = "library.update"
    LIBRARY_DELETE = "library.delete"
    LIBRARY_STATISTICS = "library.statistics"
    TIMELINE_READ = "timeline.read"
    MAP_READ = "map.read"
    SERVER_ABOUT = "server.about"
    SERVER_STORAGE = "server.storage"
    SERVER_STATISTICS = "server.statistics"
    SERVER_VERSION_CHECK = "server.versionCheck"
    SYSTEM_CONFIG_READ = "systemConfig.read"
    SYSTEM_CONFIG_UPDATE = "systemConfig.update"
    USER_READ = "user.read"
    USER_UPDATE = "user.update"
    ADMIN_USER_CREATE = "adminUser.create"
    ADMIN_USER_READ = "adminUser.read"
    ADMIN_USER_UPDATE = "adminUser.update"
    ADMIN_USER_DELETE = "adminUser.delete"


@dataclass(frozen=True)
class Access:
    """What a route asks of its caller: Immich's `@Authenticated({permission, admin})`.

    `permission` None means any signed-in caller, whatever their key holds (Immich's
    `permission: false`); `signed_in` False means a public route."""

    permission: Permission | None
    admin: bool = False
    signed_in: bool = True


ACCESS = "shoebox_access"  # the key of the declaration in a route handler's `opt`
# Immich's default for a route that is authenticated but names no permission; a route that
# forgets to declare its access gets this (and fails tests/api/test_permissions.py).
UNDECLARED = Access(Permission.ALL)
_PREFLIGHT = Access(None, signed_in=False)


def requires(permission: Permission, *, admin: bool = False) -> dict[str, Any]:
    """`opt` of a route for signed-in callers whose API key holds `permission` (or `all`)."""
    return {ACCESS: Access(permission, admin=admin)}


def signed_in() -> dict[str, Any]:
    """`opt` of a route for any signed-in caller, whatever their key holds (Immich's
    `permission: false`)."""
    return {ACCESS: Access(None)}


def public() -> dict[str, Any]:
    """`opt` of a route anybody may call, without credentials."""
    return {ACCESS: Access(None, signed_in=False)}


def access_of(handler: BaseRouteHandler) -> Access:
    """The access a route handler declared, or UNDECLARED."""
    access = handler.opt.get(ACCESS)
    if isinstance(access, Access):
        return access
    if getattr(handler, "http_methods", None) == {"OPTIONS"}:
        return _PREFLIGHT  # Litestar's own OPTIONS answer: the Allow header, for CORS preflights
    return UNDECLARED


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

    def granted(self, permissions: list[str]) -> bool:
        """Immich's isGranted: a session may do everything its user may; an API key what it
        holds (`all` holds everything)."""
        if self.api_key_id is None or Permission.ALL in self.permissions:
            return True
        return all(p in self.permissions for p in permissions)

    def authorize(self, access: Access) -> None:
        """Forbidden unless the caller may use a route declaring `access` (Immich's order:
        admin first, then the key's permission)."""
        if access.admin and not self.is_admin:
            raise Forbidden("Forbidden")
        if access.permission is not None and not self.granted([access.permission]):
            raise Forbidden(f"Missing required permission: {access.permission}")


_BY_SESSION = text(
    "SELECT u.id, u.email, u.name, u.is_admin, s.id AS sid FROM sessions s "
    "JOIN users u ON u.id = s.user_id WHERE s.token_hash = :h AND u.deleted_at IS NULL"
)
_BY_KEY = text(
    "SELECT u.id, u.email, u.name, u.is_admin, k.id AS kid, k.permissions FROM api_keys k "
    "JOIN users u ON u.id = k.user_id WHERE k.key_hash = :h AND u.deleted_at IS NULL"
)


def _bearer(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get("immich_access_token")


async def authenticate(request: ASGIConnection[Any, Any, Any, Any], ctx: Context) -> AuthUser:
    """The caller, or Unauthorized("Authentication required")."""
    api_key = request.headers.get("x-api-key")
    bearer = None if api_key else _bearer(request)
    if not api_key and not bearer:
        raise Unauthorized("Authentication required")
    user = await lookup_caller(ctx, api_key=api_key, token=bearer)
    if user is None:
        raise Unauthorized("Invalid user token" if bearer else "Invalid API key")
    return user


async def lookup_caller(
    ctx: Context, *, api_key: str | None = None, token: str | None = None
) -> AuthUser | None:
    """The user an API key (else a session token) belongs to; None for neither or unknown."""
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
        elif token:
            row = (await conn.execute(_BY_SESSION, {"h": token_hash(token)})).first()
            if row:
                return AuthUser(row.id, row.email, row.name, row.is_admin, session_id=row.sid)
    return None


CALLER = "shoebox_caller"  # where the guard leaves the caller in the request's state


def access_guard(get_ctx: Callable[[], Context]) -> Guard:
    """The one place routes are authorized: authenticate the caller of every non-public route
    and check the route's declared access before the handler runs."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        access = access_of(handler)
        if not access.signed_in:
            return
        user = await authenticate(connection, get_ctx())
        user.authorize(access)
        connection.state[CALLER] = user
        # What this request publishes is this user's doing (shared/trace.py).
        trace.actor.set(f"user {user.id}")

    return guard


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthUser:
    """The caller `access_guard` let in (the `auth` dependency)."""
    user = connection.state.get(CALLER)
    if not isinstance(user, AuthUser):
        raise ImproperlyConfiguredException(
            f"{connection.url.path}: a public route cannot ask for the caller"
        )
    return user
