"""Request and response Structs named and shaped like Immich's OpenAPI schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType


def iso(dt: datetime | None) -> str | None:
    """Immich's date-time: UTC, milliseconds, `Z`."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Dto(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of every DTO: camelCase on the wire, unknown fields ignored (Immich whitelists)."""


# --- server ---------------------------------------------------------------------------------


class ServerPingResponse(Dto):
    res: str = "pong"


class ServerVersionResponseDto(Dto):
    major: int
    minor: int
    patch: int


# --- auth & users ---------------------------------------------------------------------------


class SignUpDto(Dto):
    email: str
    password: str
    name: str


class LoginCredentialDto(Dto):
    email: str
    password: str


class LoginResponseDto(Dto):
    access_token: str
    user_id: str
    user_email: str
    name: str
    is_admin: bool
    profile_image_path: str = ""
    should_change_password: bool = False
    is_onboarded: bool = True


class LogoutResponseDto(Dto):
    successful: bool
    redirect_uri: str = "/auth/login?autoLaunch=0"


class ValidateAccessTokenResponseDto(Dto):
    auth_status: bool


class UserResponseDto(Dto):
    id: str
    email: str
    name: str
    profile_image_path: str = ""
    avatar_color: str = "primary"
    profile_changed_at: str | None = None


class UserAdminResponseDto(Dto):
    id: str
    email: str
    name: str
    is_admin: bool
    should_change_password: bool
    storage_label: str | None
    quota_size_in_bytes: int | None
    created_at: str
    updated_at: str
    deleted_at: str | None
    external_path: str | None
    profile_image_path: str = ""
    avatar_color: str = "primary"
    profile_changed_at: str | None = None
    oauth_id: str = ""
    quota_usage_in_bytes: int | None = 0
    status: str = "active"
    license: None = None


class UserAdminCreateDto(Dto):
    email: str
    password: str
    name: str
    storage_label: str | None = None
    quota_size_in_bytes: int | None = None
    should_change_password: bool = False
    notify: bool = False
    is_admin: bool = False
    external_path: str | None = None


class UserAdminUpdateDto(Dto):
    email: str | UnsetType = UNSET
    password: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    storage_label: str | None | UnsetType = UNSET
    quota_size_in_bytes: int | None | UnsetType = UNSET
    should_change_password: bool | UnsetType = UNSET
    is_admin: bool | UnsetType = UNSET
    # Shoebox's extension of Immich's DTO: the folder this user's import paths must lie in.
    external_path: str | None | UnsetType = UNSET


class UserUpdateMeDto(Dto):
    email: str | UnsetType = UNSET
    password: str | UnsetType = UNSET
    name: str | UnsetType = UNSET


class APIKeyCreateDto(Dto):
    name: str = "API Key"
    permissions: list[str] = msgspec.field(default_factory=lambda: ["all"])


class APIKeyResponseDto(Dto):
    id: str
    name: str
    created_at: str
    updated_at: str
    permissions: list[str]


class APIKeyCreateResponseDto(Dto):
    secret: str
    api_key: APIKeyResponseDto


# --- libraries ------------------------------------------------------------------------------


class CreateLibraryDto(Dto):
    owner_id: uuid.UUID
    name: str | UnsetType = UNSET
    import_paths: list[str] | UnsetType = UNSET
    exclusion_patterns: list[str] | UnsetType = UNSET
    type: Literal["EXTERNAL"] | UnsetType = UNSET


class UpdateLibraryDto(Dto):
    name: str | UnsetType = UNSET
    import_paths: list[str] | UnsetType = UNSET
    exclusion_patterns: list[str] | UnsetType = UNSET


class ValidateLibraryDto(Dto):
    import_paths: list[str] = []
    exclusion_patterns: list[str] = []


class ValidateLibraryImportPathResponseDto(Dto):
    import_path: str
    is_valid: bool = False
    message: str | UnsetType = UNSET


class ValidateLibraryResponseDto(Dto):
    import_paths: list[ValidateLibraryImportPathResponseDto] = []


class ScanLibraryDto(Dto):
    refresh_modified_files: bool = False
    refresh_all_files: bool = False


class LibraryResponseDto(Dto):
    id: str
    owner_id: str
    name: str
    type: str
    import_paths: list[str]
    exclusion_patterns: list[str]
    asset_count: int
    created_at: str
    updated_at: str
    refreshed_at: str | None


class LibraryStatsResponseDto(Dto):
    photos: int
    videos: int
    total: int
    usage: int
    offline: int = 0


class ScanProblemDto(Dto):
    path: str
    problem: str
    found_at: str


class LibraryScanStatusDto(Dto):
    """Shoebox's own: the state of a library's latest scan (GET /libraries/{id}/scan)."""

    scan_id: str | None
    state: str
    mode: str | None
    requested_at: str | None
    finished_at: str | None
    files_seen: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    failed: int = 0
    dirs_done: int = 0
    dirs_pending: int = 0
    unavailable_import_paths: list[str] = []
    problems: list[ScanProblemDto] = []
