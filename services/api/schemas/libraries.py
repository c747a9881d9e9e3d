"""Library, scan and system-config DTOs."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from services.api.schemas.base import Dto, Name, PathList
from shared.sysconfig import LibraryConfig

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
