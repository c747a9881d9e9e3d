"""Asset, search, upload, timeline and map DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from services.api.schemas.base import Dto

# --- assets ---------------------------------------------------------------------------------


class ExifResponseDto(Dto):
    make: str | None = None
    model: str | None = None
    exif_image_width: int | None = None
    exif_image_height: int | None = None
    file_size_in_byte: int | None = None
    orientation: str | None = None
    date_time_original: str | None = None
    modify_date: str | None = None
    time_zone: str | None = None
    lens_model: str | None = None
    f_number: float | None = None
    focal_length: float | None = None
    iso: int | None = None
    exposure_time: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    description: str | None = None
    projection_type: str | None = None
    rating: int | None = None


class AssetResponseDto(Dto):
    id: str
    device_asset_id: str
    owner_id: str
    device_id: str
    library_id: str | None
    type: str
    original_path: str
    original_file_name: str
    original_mime_type: str | None
    thumbhash: str | None
    file_created_at: str
    file_modified_at: str
    local_date_time: str
    updated_at: str
    created_at: str
    is_favorite: bool
    is_archived: bool
    is_trashed: bool
    is_offline: bool
    visibility: str
    duration: str
    checksum: str
    has_metadata: bool
    is_external: bool
    is_read_only: bool
    resized: bool
    exif_info: ExifResponseDto | UnsetType = UNSET
    live_photo_video_id: str | None = None
    people: list[str] = []
    tags: list[str] = []
    stack: None = None
    duplicate_id: str | None = None
    # Shoebox's own: why an asset is offline, and whether its metadata could be read.
    offline_reason: str | None = None
    metadata_status: str = "pending"
    metadata_error: str | None = None


class MetadataSearchDto(Dto, forbid_unknown_fields=True):
    """Immich's MetadataSearchDto, the filters Shoebox honours; any other field is refused
    (400 `property x should not exist`) rather than silently ignored."""

    library_id: uuid.UUID | None = None
    type: Literal["IMAGE", "VIDEO", "AUDIO", "OTHER"] | None = None
    is_favorite: bool | None = None
    is_offline: bool | None = None
    is_archived: bool | None = None
    visibility: Literal["archive", "timeline", "hidden", "locked"] | None = None
    is_not_in_album: bool | None = None
    album_ids: list[uuid.UUID] | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    # Exif filters: equal, or `null` for assets without the value (as Immich).
    make: str | UnsetType | None = UNSET
    model: str | UnsetType | None = UNSET
    lens_model: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    state: str | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    # Substring, case-insensitive (Immich's ILIKE '%…%').
    original_file_name: str | None = None
    original_path: str | None = None
    description: str | None = None
    checksum: str | None = None
    id: uuid.UUID | None = None
    device_id: str | None = None
    device_asset_id: str | None = None
    trashed_after: datetime | None = None
    trashed_before: datetime | None = None
    with_exif: bool = False
    with_deleted: bool = False  # also trashed assets (found only when asked for)
    with_stacked: bool = False  # no stacks: no effect
    with_people: bool = False  # no people: no effect
    order: Literal["asc", "desc"] = "desc"
    # Immich's bounds (@Min(1), @Max(1000)); the page's own bound keeps its OFFSET in a bigint.
    page: Annotated[int, msgspec.Meta(ge=1, le=1 << 40)] = 1
    size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 250


class SearchAssetResponseDto(Dto):
    total: int
    count: int
    items: list[AssetResponseDto]
    facets: list[str] = []
    next_page: str | None = None


class SearchAlbumResponseDto(Dto):
    total: int = 0
    count: int = 0
    items: list[str] = []
    facets: list[str] = []


class SearchResponseDto(Dto):
    albums: SearchAlbumResponseDto
    assets: SearchAssetResponseDto


# --- uploads, asset media and statistics --------------------------------------------------


class AssetMediaResponseDto(Dto):
    id: str
    status: Literal["created", "duplicate", "replaced"]


class AssetBulkUploadCheckItem(Dto):
    id: str
    checksum: str


class AssetBulkUploadCheckDto(Dto):
    assets: list[AssetBulkUploadCheckItem]


class AssetBulkUploadCheckResult(Dto):
    id: str
    action: Literal["accept", "reject"]
    reason: Literal["duplicate", "unsupported-format"] | UnsetType = UNSET
    asset_id: str | UnsetType = UNSET
    is_trashed: bool | UnsetType = UNSET


class AssetBulkUploadCheckResponseDto(Dto):
    results: list[AssetBulkUploadCheckResult]


class CheckExistingAssetsDto(Dto):
    device_asset_ids: list[str]
    device_id: str


class CheckExistingAssetsResponseDto(Dto):
    existing_ids: list[str]


class AssetBulkDeleteDto(Dto):
    ids: list[uuid.UUID]
    force: bool = False


class UpdateAssetDto(Dto):
    """Immich's UpdateAssetDto: what a user may say about an asset. `isArchived` is the
    older clients' word for `visibility: archive`."""

    is_favorite: bool | UnsetType = UNSET
    is_archived: bool | UnsetType = UNSET
    visibility: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    rating: int | UnsetType | None = UNSET
    date_time_original: str | UnsetType = UNSET
    latitude: float | UnsetType = UNSET
    longitude: float | UnsetType = UNSET
    live_photo_video_id: str | UnsetType | None = UNSET


class AssetBulkUpdateDto(UpdateAssetDto, kw_only=True):
    # Required after optional fields: fine for msgspec's keyword-only Structs.
    ids: list[uuid.UUID]
    duplicate_id: str | UnsetType | None = UNSET
    date_time_relative: int | UnsetType = UNSET
    time_zone: str | UnsetType = UNSET


class TrashResponseDto(Dto):
    count: int


class AssetStatsResponseDto(Dto):
    images: int
    videos: int
    total: int


# --- timeline and map -----------------------------------------------------------------------


class TimeBucketsResponseDto(Dto):
    time_bucket: str
    count: int


class TimeBucketAssetResponseDto(Dto):
    """Immich's columnar bucket: one slot per asset in every array."""

    id: list[str]
    owner_id: list[str]
    ratio: list[float]
    is_favorite: list[bool]
    is_trashed: list[bool]
    is_image: list[bool]
    visibility: list[str]
    thumbhash: list[str | None]
    file_created_at: list[str]
    created_at: list[str]
    local_offset_hours: list[float]
    duration: list[int | None]
    projection_type: list[str | None]
    live_photo_video_id: list[str | None]
    city: list[str | None]
    country: list[str | None]
    latitude: list[float | None] | UnsetType = UNSET
    longitude: list[float | None] | UnsetType = UNSET
    # Shoebox's own: offline assets stay in the timeline, marked.
    is_offline: list[bool] = []


class MapMarkerResponseDto(Dto):
    id: str
    lat: float
    lon: float
    city: str | None = None
    state: str | None = None
    country: str | None = None
