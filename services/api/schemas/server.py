"""Server, statistics and job-queue DTOs (Immich's server and jobs tags)."""

from __future__ import annotations

import msgspec

from services.api.schemas.base import Dto

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
