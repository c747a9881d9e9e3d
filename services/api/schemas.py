"""Request and response Structs named and shaped like Immich's OpenAPI schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from services.api.validation import EachNotEmpty, Email, MaxItems, NotEmpty, Unique
from shared.sysconfig import LibraryConfig

# Immich's rules (class-validator decorators), checked by services/api/validation.py.
PathList = Annotated[list[str], EachNotEmpty(), Unique(), MaxItems(128)]
"""`importPaths` and `exclusionPatterns`: each non-empty, unique, at most 128."""
Name = Annotated[str, NotEmpty()]
EmailStr = Annotated[str, Email()]
Password = Annotated[str, NotEmpty()]


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


class ServerStorageResponseDto(Dto):
    disk_size: str
    disk_use: str
    disk_available: str
    disk_size_raw: int
    disk_use_raw: int
    disk_available_raw: int
    disk_usage_percentage: float


class UsageByUserDto(Dto):
    user_id: str
    user_name: str
    photos: int
    videos: int
    usage: int
    usage_photos: int
    usage_videos: int
    quota_size_in_bytes: int | None


class ServerStatsResponseDto(Dto):
    photos: int = 0
    videos: int = 0
    usage: int = 0
    usage_photos: int = 0
    usage_videos: int = 0
    usage_by_user: list[UsageByUserDto] = []


class VersionCheckStateResponseDto(Dto):
    checked_at: str | None
    release_version: str | None


class ServerVersionHistoryResponseDto(Dto):
    id: str
    created_at: str
    version: str


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


# --- libraries ------------------------------------------------------------------------------


class CreateLibraryDto(Dto):
    # Optional, as in Immich before v1.99: the caller's own library when it is left out.
    owner_id: uuid.UUID | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    import_paths: PathList | UnsetType = UNSET
    exclusion_patterns: PathList | UnsetType = UNSET
    type: Literal["EXTERNAL"] | UnsetType = UNSET


class UpdateLibraryDto(Dto):
    name: Name | UnsetType = UNSET
    import_paths: PathList | UnsetType = UNSET
    exclusion_patterns: PathList | UnsetType = UNSET


class ValidateLibraryDto(Dto):
    import_paths: PathList = []
    exclusion_patterns: PathList = []


class ValidateLibraryImportPathResponseDto(Dto):
    import_path: str
    is_valid: bool = False
    message: str | UnsetType = UNSET


class ValidateLibraryResponseDto(Dto):
    import_paths: list[ValidateLibraryImportPathResponseDto] = []


class RemoveOfflineFilesResponseDto(Dto):
    """Shoebox's answer to removeOffline: Immich answers 204; this says what was kept and why
    (assets of an unavailable import path wait for their drive)."""

    removed: int
    kept: int
    kept_reasons: dict[str, int] = {}


class SystemConfigDto(Dto):
    """Immich's SystemConfigDto, of which Shoebox keeps the `library` section; other sections
    a client sends are ignored."""

    library: LibraryConfig = msgspec.field(default_factory=LibraryConfig)


class ScanLibraryDto(Dto):
    refresh_modified_files: bool = False
    refresh_all_files: bool = False
    path: str | None = None
    """Shoebox's: scan only this folder (or file) inside one of the import paths."""


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


# --- jobs -------------------------------------------------------------------------------------


class QueueStatisticsDto(Dto):
    active: int = 0
    completed: int = 0
    failed: int = 0
    delayed: int = 0
    waiting: int = 0
    paused: int = 0


class QueueStatusLegacyDto(Dto):
    is_active: bool = False
    is_paused: bool = False


class QueueResponseLegacyDto(Dto):
    job_counts: QueueStatisticsDto = msgspec.field(default_factory=QueueStatisticsDto)
    queue_status: QueueStatusLegacyDto = msgspec.field(default_factory=QueueStatusLegacyDto)


def _idle() -> QueueResponseLegacyDto:
    return QueueResponseLegacyDto()


class QueuesResponseLegacyDto(Dto):
    """Immich's GET /jobs: every queue of Immich (SDK 3.2.2), idle where Shoebox has none."""

    background_task: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    backup_database: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    duplicate_detection: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    editor: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    face_detection: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    facial_recognition: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    integrity_check: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    library: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    metadata_extraction: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    migration: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    notifications: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    ocr: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    search: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    sidecar: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    smart_search: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    storage_template_migration: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    thumbnail_generation: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    video_conversion: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
    workflow: QueueResponseLegacyDto = msgspec.field(default_factory=_idle)
