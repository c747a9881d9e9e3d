"""Auth, user and API-key DTOs."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from services.api.schemas.base import Dto, EmailStr, Name, Password

# --- auth & users ---------------------------------------------------------------------------


class SignUpDto(Dto):
    email: EmailStr
    password: Password
    name: Name


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
    email: EmailStr
    password: Password
    name: Name
    storage_label: str | None = None
    quota_size_in_bytes: int | None = None
    should_change_password: bool = False
    notify: bool = False
    is_admin: bool = False
    external_path: str | None = None


class UserAdminUpdateDto(Dto):
    email: EmailStr | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    storage_label: str | UnsetType | None = UNSET
    quota_size_in_bytes: int | UnsetType | None = UNSET
    should_change_password: bool | UnsetType = UNSET
    is_admin: bool | UnsetType = UNSET
    # Shoebox's extension of Immich's DTO: the folder this user's import paths must lie in.
    external_path: str | UnsetType | None = UNSET


class UserUpdateMeDto(Dto):
    email: EmailStr | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    name: Name | UnsetType = UNSET


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
