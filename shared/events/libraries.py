"""Events of libraries and of their scans (the scan bookkeeping on `events.scans.<library>`)."""

from __future__ import annotations

import uuid

from shared.events.base import Aggregate, BaseEvent, LibraryType, ScanMode

# --- libraries ------------------------------------------------------------------------------


class LibraryCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library was created (an upload library with its user, or an external one)."""

    aggregate = Aggregate.LIBRARY
    owner_id: uuid.UUID
    name: str
    type: LibraryType
    import_paths: list[str] = []
    exclusion_patterns: list[str] = []


class LibraryRenamed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library got a new name."""

    aggregate = Aggregate.LIBRARY
    name: str


class ImportPathsChanged(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The folders an external library tracks were replaced."""

    aggregate = Aggregate.LIBRARY
    import_paths: list[str]


class ExclusionPatternsChanged(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The globs that drop files from an external library were replaced."""

    aggregate = Aggregate.LIBRARY
    exclusion_patterns: list[str]


class LibraryScanRequested(BaseEvent, frozen=True, kw_only=True, tag=True):
    """Someone (a user, the nightly job, the watcher) asked for a scan."""

    aggregate = Aggregate.SCANS
    scan_id: uuid.UUID
    mode: ScanMode = ScanMode.NEW
    requested_by: str = "user"
    path: str | None = None
    """Only this folder (or this file's folder) and what lies below it; None: the library."""


class ScanProblemFound(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan met something it could not read (unreadable folder, symlink out, bad name...).

    v2 renamed `problem` to `message`, the word Immich's errors use for what a person reads
    (`upcast_ScanProblemFound_v1_v2`; decision 0023)."""

    aggregate = Aggregate.SCANS
    v: int = 2
    scan_id: uuid.UUID
    path: str
    message: str


class LibraryScanFinished(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan walked every import path; the counters are what it found."""

    aggregate = Aggregate.SCANS
    scan_id: uuid.UUID
    files_seen: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    failed: int = 0
    unavailable_import_paths: list[str] = []


class DirectoryIndexed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan listed a folder whose mtime is `mtime_ns`: while the folder keeps that mtime (and
    the exclusion patterns hash `patterns_hash`), a *new*-mode rescan need not list it again."""

    aggregate = Aggregate.SCANS
    path: str
    mtime_ns: int
    patterns_hash: str
    scan_id: uuid.UUID | None = None


class DirectoryGone(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A folder (and everything below it) that a scan had indexed no longer exists."""

    aggregate = Aggregate.SCANS
    path: str
    scan_id: uuid.UUID | None = None


class ImportPathSeen(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan found an import path usable, on the file system `device` (its `st_dev`): while
    it is, a folder on its parent's device there is a mount point without its drive."""

    aggregate = Aggregate.SCANS
    path: str
    device: int
    scan_id: uuid.UUID | None = None
    real_path: str = ""
    """Where the import path led (through its symlinks): where its assets are, if it goes."""


class LibraryDeletionStarted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library is being deleted; it is hidden at once, its assets go in the background."""

    aggregate = Aggregate.LIBRARY


class LibraryDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library and all its assets are gone (the files on disk never are)."""

    aggregate = Aggregate.LIBRARY
