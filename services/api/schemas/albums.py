"""Album DTOs."""

from __future__ import annotations

import uuid
from typing import Literal

from msgspec import UNSET, UnsetType

from services.api.schemas.assets import AssetResponseDto
from services.api.schemas.base import Dto
from services.api.schemas.users import UserResponseDto

# --- albums ---------------------------------------------------------------------------------


class AlbumUserCreateDto(Dto):
    user_id: uuid.UUID
    role: Literal["editor", "viewer"] = "editor"


class CreateAlbumDto(Dto):
    album_name: str
    description: str | None = None
    asset_ids: list[uuid.UUID] = []
    album_users: list[AlbumUserCreateDto] = []


class UpdateAlbumDto(Dto):
    album_name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    album_thumbnail_asset_id: uuid.UUID | UnsetType = UNSET
    is_activity_enabled: bool | UnsetType = UNSET
    order: Literal["asc", "desc"] | UnsetType = UNSET


class BulkIdsDto(Dto):
    ids: list[uuid.UUID]


class BulkIdResponseDto(Dto):
    id: str
    success: bool
    error: Literal["duplicate", "no_permission", "not_found", "unknown"] | UnsetType = UNSET


class AlbumUserResponseDto(Dto):
    user: UserResponseDto
    role: Literal["owner", "editor", "viewer"]


class AlbumResponseDto(Dto):
    id: str
    album_name: str
    description: str
    album_thumbnail_asset_id: str | None
    created_at: str
    updated_at: str
    owner_id: str
    owner: UserResponseDto
    album_users: list[AlbumUserResponseDto]
    shared: bool
    has_shared_link: bool
    asset_count: int
    assets: list[AssetResponseDto]
    is_activity_enabled: bool = True
    order: Literal["asc", "desc"] = "desc"
    start_date: str | UnsetType = UNSET
    end_date: str | UnsetType = UNSET
    last_modified_asset_timestamp: str | UnsetType = UNSET


class AlbumStatisticsResponseDto(Dto):
    owned: int
    shared: int
    not_shared: int
