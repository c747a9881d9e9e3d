"""Projections of libraries, their scans, folder index and deletion."""

from __future__ import annotations

from sqlalchemy import TextClause, text

from services.projector.projections.base import Increment, Op, Projection
from shared import events as ev
from shared.pg import like_prefix

_LIBRARY_CREATED = text(
    "INSERT INTO libraries (id, owner_id, name, type, import_paths, exclusion_patterns, "
    "created_at, updated_at, refreshed_at, deleting, last_seq) VALUES (:id, :owner_id, :name, "
    ":type, :import_paths, :exclusion_patterns, :at, :at, NULL, false, :seq) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_library_created(e: ev.LibraryCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _LIBRARY_CREATED,
            {
                "id": e.stream_id,
                "owner_id": e.owner_id,
                "name": e.name,
                "type": e.type,
                "import_paths": list(e.import_paths),
                "exclusion_patterns": list(e.exclusion_patterns),
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


def _library_update(column: str) -> TextClause:
    return text(
        f"UPDATE libraries SET {column} = :value, updated_at = :at, last_seq = :seq WHERE id = :id"
    )


_LIBRARY_RENAMED = _library_update("name")
_IMPORT_PATHS = _library_update("import_paths")
_EXCLUSIONS = _library_update("exclusion_patterns")


def apply_library_renamed(e: ev.LibraryRenamed, seq: int) -> list[Op | Increment]:
    return [
        (_LIBRARY_RENAMED, {"id": e.stream_id, "value": e.name, "at": e.occurred_at, "seq": seq})
    ]


def apply_import_paths_changed(e: ev.ImportPathsChanged, seq: int) -> list[Op | Increment]:
    return [
        (
            _IMPORT_PATHS,
            {"id": e.stream_id, "value": list(e.import_paths), "at": e.occurred_at, "seq": seq},
        )
    ]


def apply_exclusion_patterns_changed(
    e: ev.ExclusionPatternsChanged, seq: int
) -> list[Op | Increment]:
    return [
        (
            _EXCLUSIONS,
            {
                "id": e.stream_id,
                "value": list(e.exclusion_patterns),
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_SCAN_REQUESTED = text(
    "INSERT INTO scan_runs (id, library_id, mode, requested_by, state, requested_at, "
    "files_seen, new, changed, missing, failed, unavailable_import_paths) VALUES (:id, "
    ":library_id, :mode, :requested_by, 'running', :at, 0, 0, 0, 0, 0, '{}') "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_library_scan_requested(e: ev.LibraryScanRequested, seq: int) -> list[Op | Increment]:
    return [
        (
            _SCAN_REQUESTED,
            {
                "id": e.scan_id,
                "library_id": e.stream_id,
                "mode": e.mode.value,
                "requested_by": e.requested_by,
                "at": e.occurred_at,
            },
        ),
    ]


_SCAN_PROBLEM = text(
    "INSERT INTO scan_problems (id, library_id, scan_id, path, problem, found_at) "
    "VALUES (:id, :library_id, :scan_id, :path, :problem, :at) ON CONFLICT (id) DO NOTHING"
)


def apply_scan_problem_found(e: ev.ScanProblemFound, seq: int) -> list[Op | Increment]:
    return [
        (
            _SCAN_PROBLEM,
            {
                "id": e.event_id,
                "library_id": e.stream_id,
                "scan_id": e.scan_id,
                "path": e.path,
                "problem": e.message,
                "at": e.occurred_at,
            },
        ),
        Increment("failed", e.scan_id),
    ]


_SCAN_FINISHED = text(
    "UPDATE scan_runs SET state = 'finished', finished_at = :at, files_seen = :files_seen, "
    "unavailable_import_paths = :unavailable WHERE id = :id"
)
_LIBRARY_REFRESHED = text("UPDATE libraries SET refreshed_at = :at WHERE id = :id")


def apply_library_scan_finished(e: ev.LibraryScanFinished, seq: int) -> list[Op | Increment]:
    return [
        (
            _SCAN_FINISHED,
            {
                "id": e.scan_id,
                "at": e.occurred_at,
                "files_seen": e.files_seen,
                "unavailable": list(e.unavailable_import_paths),
            },
        ),
        (_LIBRARY_REFRESHED, {"id": e.stream_id, "at": e.occurred_at}),
    ]


_DIR_INDEXED = text(
    "INSERT INTO library_dirs (library_id, path, mtime_ns, patterns_hash) "
    "VALUES (:library_id, :path, :mtime_ns, :patterns_hash) ON CONFLICT (library_id, path) "
    "DO UPDATE SET mtime_ns = excluded.mtime_ns, patterns_hash = excluded.patterns_hash"
)


def apply_directory_indexed(e: ev.DirectoryIndexed, seq: int) -> list[Op | Increment]:
    return [
        (
            _DIR_INDEXED,
            {
                "library_id": e.stream_id,
                "path": e.path,
                "mtime_ns": e.mtime_ns,
                "patterns_hash": e.patterns_hash,
                "id": (e.stream_id, e.path),
            },
        )
    ]


_DIR_GONE = text(
    "DELETE FROM library_dirs WHERE library_id = :library_id AND (path = :path OR path LIKE :below)"
)


def apply_directory_gone(e: ev.DirectoryGone, seq: int) -> list[Op | Increment]:
    return [(_DIR_GONE, {"library_id": e.stream_id, "path": e.path, "below": like_prefix(e.path)})]


_IMPORT_PATH_SEEN = text(
    "INSERT INTO library_import_paths (library_id, path, device, real_path) VALUES "
    "(:library_id, :path, :device, :real_path) ON CONFLICT (library_id, path) "
    "DO UPDATE SET device = excluded.device, real_path = excluded.real_path"
)


def apply_import_path_seen(e: ev.ImportPathSeen, seq: int) -> list[Op | Increment]:
    return [
        (
            _IMPORT_PATH_SEEN,
            {
                "library_id": e.stream_id,
                "path": e.path,
                "device": e.device,
                "real_path": e.real_path,
                "id": (e.stream_id, e.path),
            },
        ),
    ]


_LIBRARY_DELETING = text(
    "UPDATE libraries SET deleting = true, updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_library_deletion_started(e: ev.LibraryDeletionStarted, seq: int) -> list[Op | Increment]:
    return [(_LIBRARY_DELETING, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_LIBRARY_ASSETS_DELETED = text("DELETE FROM assets WHERE library_id = :id")
_LIBRARY_DELETED = text("DELETE FROM libraries WHERE id = :id")
_LIBRARY_DIRS_DELETED = text("DELETE FROM library_dirs WHERE library_id = :id")
_LIBRARY_FOLDERS_DELETED = text("DELETE FROM folders WHERE library_id = :id")
_LIBRARY_TOMBSTONES_DELETED = text("DELETE FROM asset_tombstones WHERE library_id = :id")
_LIBRARY_IMPORT_PATHS_DELETED = text("DELETE FROM library_import_paths WHERE library_id = :id")
_LIBRARY_SCANS_DELETED = text("DELETE FROM scan_runs WHERE library_id = :id")
_LIBRARY_PROBLEMS_DELETED = text("DELETE FROM scan_problems WHERE library_id = :id")


def apply_library_deleted(e: ev.LibraryDeleted, seq: int) -> list[Op | Increment]:
    p = {"id": e.stream_id}
    return [
        (_LIBRARY_ASSETS_DELETED, p),
        (_LIBRARY_SCANS_DELETED, p),
        (_LIBRARY_PROBLEMS_DELETED, p),
        (_LIBRARY_DIRS_DELETED, p),
        (_LIBRARY_FOLDERS_DELETED, p),
        (_LIBRARY_TOMBSTONES_DELETED, p),
        (_LIBRARY_IMPORT_PATHS_DELETED, p),
        (_LIBRARY_DELETED, p),
    ]


PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {
    ev.LibraryCreated: apply_library_created,
    ev.LibraryRenamed: apply_library_renamed,
    ev.ImportPathsChanged: apply_import_paths_changed,
    ev.ExclusionPatternsChanged: apply_exclusion_patterns_changed,
    ev.LibraryScanRequested: apply_library_scan_requested,
    ev.ScanProblemFound: apply_scan_problem_found,
    ev.LibraryScanFinished: apply_library_scan_finished,
    ev.DirectoryIndexed: apply_directory_indexed,
    ev.DirectoryGone: apply_directory_gone,
    ev.ImportPathSeen: apply_import_path_seen,
    ev.LibraryDeletionStarted: apply_library_deletion_started,
    ev.LibraryDeleted: apply_library_deleted,
}

# Statements that touch rows of several aggregates: everything planned before them runs first.
BARRIERS = frozenset(
    {
        _LIBRARY_ASSETS_DELETED,
        _LIBRARY_SCANS_DELETED,
        _LIBRARY_PROBLEMS_DELETED,
        _DIR_GONE,
        _LIBRARY_DIRS_DELETED,
        _LIBRARY_FOLDERS_DELETED,
        _LIBRARY_TOMBSTONES_DELETED,
        _LIBRARY_IMPORT_PATHS_DELETED,
    }
)
