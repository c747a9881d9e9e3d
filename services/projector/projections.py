"""Projections: one pure function per event, turning it into SQL operations on the read models.

A projection never reads: it returns (statement, params) pairs, so consecutive operations that
share a statement can be sent as one executemany (replay speed), and a projection can be tested
with plain values. Every statement is an idempotent upsert or a guarded update keyed by
deterministic ids, so applying an event twice changes nothing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import TextClause, text

from shared import events as ev
from shared.db import like_prefix

Op = tuple[TextClause, dict[str, Any]]


class Increment(NamedTuple):
    """Add one to a scan counter. Increments commute, so a batch sums them and applies each
    counter once at its end: runs of FileDiscovered then group into a single executemany."""

    column: str
    scan_id: Any


Projection = Callable[[Any, int], list[Op | Increment]]

_SERVER_INIT = text(
    "INSERT INTO server_state (id, admin_id, initialized_at) VALUES (1, :admin_id, :at) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_server_initialized(e: ev.ServerInitialized, seq: int) -> list[Op | Increment]:
    return [(_SERVER_INIT, {"admin_id": e.admin_id, "at": e.occurred_at})]


_USER_CREATED = text(
    "INSERT INTO users (id, email, name, password_hash, is_admin, should_change_password, "
    "storage_label, quota_size_in_bytes, external_path, created_at, updated_at, last_seq) "
    "VALUES (:id, :email, :name, :password_hash, :is_admin, :should_change_password, "
    ":storage_label, :quota, NULL, :at, :at, :seq) ON CONFLICT (id) DO NOTHING"
)


def apply_user_created(e: ev.UserCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _USER_CREATED,
            {
                "id": e.stream_id,
                "email": e.email,
                "name": e.name,
                "password_hash": e.password_hash,
                "is_admin": e.is_admin,
                "should_change_password": e.should_change_password,
                "storage_label": e.storage_label,
                "quota": e.quota_size_in_bytes,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_USER_UPDATED = text(
    "UPDATE users SET email = coalesce(:email, email), name = coalesce(:name, name), "
    "password_hash = coalesce(:password_hash, password_hash), "
    "is_admin = coalesce(:is_admin, is_admin), "
    "should_change_password = coalesce(:should_change_password, should_change_password), "
    "storage_label = coalesce(:storage_label, storage_label), "
    "quota_size_in_bytes = coalesce(:quota, quota_size_in_bytes), "
    "updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_user_updated(e: ev.UserUpdated, seq: int) -> list[Op | Increment]:
    return [
        (
            _USER_UPDATED,
            {
                "id": e.stream_id,
                "email": e.email,
                "name": e.name,
                "password_hash": e.password_hash,
                "is_admin": e.is_admin,
                "should_change_password": e.should_change_password,
                "storage_label": e.storage_label,
                "quota": e.quota_size_in_bytes,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_EXTERNAL_PATH = text(
    "UPDATE users SET external_path = :path, updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_external_path_set(e: ev.ExternalPathSet, seq: int) -> list[Op | Increment]:
    return [
        (
            _EXTERNAL_PATH,
            {"id": e.stream_id, "path": e.external_path, "at": e.occurred_at, "seq": seq},
        )
    ]


_USER_DELETED = text(
    "UPDATE users SET deleted_at = :at, updated_at = :at, last_seq = :seq WHERE id = :id"
)
_USER_SESSIONS_DELETED = text("DELETE FROM sessions WHERE user_id = :id")
_USER_KEYS_DELETED = text("DELETE FROM api_keys WHERE user_id = :id")


def apply_user_deleted(e: ev.UserDeleted, seq: int) -> list[Op | Increment]:
    return [
        (_USER_DELETED, {"id": e.stream_id, "at": e.occurred_at, "seq": seq}),
        (_USER_SESSIONS_DELETED, {"id": e.stream_id}),
        (_USER_KEYS_DELETED, {"id": e.stream_id}),
    ]


_SESSION_CREATED = text(
    "INSERT INTO sessions (id, user_id, token_hash, created_at) "
    "VALUES (:id, :user_id, :token_hash, :at) ON CONFLICT (id) DO NOTHING"
)
_USER_SEQ = text("UPDATE users SET last_seq = :seq WHERE id = :id")


def apply_session_created(e: ev.SessionCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _SESSION_CREATED,
            {
                "id": e.session_id,
                "user_id": e.stream_id,
                "token_hash": e.token_hash,
                "at": e.occurred_at,
            },
        ),
        (_USER_SEQ, {"id": e.stream_id, "seq": seq}),
    ]


_SESSION_ENDED = text("DELETE FROM sessions WHERE id = :id")


def apply_session_ended(e: ev.SessionEnded, seq: int) -> list[Op | Increment]:
    return [
        (_SESSION_ENDED, {"id": e.session_id, "user_id": e.stream_id}),
        (_USER_SEQ, {"id": e.stream_id, "seq": seq}),
    ]


_KEY_CREATED = text(
    "INSERT INTO api_keys (id, user_id, name, key_hash, permissions, created_at, updated_at) "
    "VALUES (:id, :user_id, :name, :key_hash, :permissions, :at, :at) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_api_key_created(e: ev.ApiKeyCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _KEY_CREATED,
            {
                "id": e.key_id,
                "user_id": e.stream_id,
                "name": e.name,
                "key_hash": e.key_hash,
                "permissions": list(e.permissions),
                "at": e.occurred_at,
            },
        ),
        (_USER_SEQ, {"id": e.stream_id, "seq": seq}),
    ]


_KEY_DELETED = text("DELETE FROM api_keys WHERE id = :id")


def apply_api_key_deleted(e: ev.ApiKeyDeleted, seq: int) -> list[Op | Increment]:
    return [
        (_KEY_DELETED, {"id": e.key_id, "user_id": e.stream_id}),
        (_USER_SEQ, {"id": e.stream_id, "seq": seq}),
    ]


# --- libraries ------------------------------------------------------------------------------

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


_LIBRARY_SEQ = text("UPDATE libraries SET last_seq = :seq WHERE id = :id")
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
        (_LIBRARY_SEQ, {"id": e.stream_id, "seq": seq}),
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
                "problem": e.problem,
                "at": e.occurred_at,
            },
        ),
        Increment("failed", e.scan_id),
        (_LIBRARY_SEQ, {"id": e.stream_id, "seq": seq}),
    ]


_SCAN_FINISHED = text(
    "UPDATE scan_runs SET state = 'finished', finished_at = :at, files_seen = :files_seen, "
    "unavailable_import_paths = :unavailable WHERE id = :id"
)
_LIBRARY_REFRESHED = text("UPDATE libraries SET refreshed_at = :at, last_seq = :seq WHERE id = :id")


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
        (_LIBRARY_REFRESHED, {"id": e.stream_id, "at": e.occurred_at, "seq": seq}),
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


_LIBRARY_DELETING = text(
    "UPDATE libraries SET deleting = true, updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_library_deletion_started(e: ev.LibraryDeletionStarted, seq: int) -> list[Op | Increment]:
    return [(_LIBRARY_DELETING, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_LIBRARY_ASSETS_DELETED = text("DELETE FROM assets WHERE library_id = :id")
_LIBRARY_DELETED = text("DELETE FROM libraries WHERE id = :id")
_LIBRARY_DIRS_DELETED = text("DELETE FROM library_dirs WHERE library_id = :id")
_LIBRARY_SCANS_DELETED = text("DELETE FROM scan_runs WHERE library_id = :id")
_LIBRARY_PROBLEMS_DELETED = text("DELETE FROM scan_problems WHERE library_id = :id")


def apply_library_deleted(e: ev.LibraryDeleted, seq: int) -> list[Op | Increment]:
    p = {"id": e.stream_id}
    return [
        (_LIBRARY_ASSETS_DELETED, p),
        (_LIBRARY_SCANS_DELETED, p),
        (_LIBRARY_PROBLEMS_DELETED, p),
        (_LIBRARY_DIRS_DELETED, p),
        (_LIBRARY_DELETED, p),
    ]


# --- assets ---------------------------------------------------------------------------------

_ASSET_INSERT = text(
    "INSERT INTO assets (id, owner_id, library_id, type, original_path, original_file_name, dir, "
    "checksum, file_size, file_modified_at, file_created_at, local_date_time, is_offline, "
    "offline_reason, is_favorite, device_asset_id, device_id, metadata_status, mime_type, "
    "sidecar_mtime_ms, created_at, updated_at, last_seq) VALUES (:id, :owner_id, :library_id, "
    ":type, :path, :file_name, :dir, :checksum, :file_size, :mtime, :created, :created, false, "
    "NULL, :is_favorite, :device_asset_id, :device_id, 'pending', NULL, :sidecar, :at, :at, "
    ":seq) "
    "ON CONFLICT (id) DO NOTHING"
)
_SCAN_ADD = {
    name: text(f"UPDATE scan_runs SET {name} = {name} + :n WHERE id = :id")
    for name in ("new", "changed", "missing", "failed")
}


def _scan_inc(name: str, scan_id: Any) -> list[Op | Increment]:
    return [Increment(name, scan_id)] if scan_id is not None else []


def apply_file_discovered(e: ev.FileDiscovered, seq: int) -> list[Op | Increment]:
    name = posixpath.basename(e.path)
    return [
        (
            _ASSET_INSERT,
            {
                "id": e.stream_id,
                "owner_id": e.owner_id,
                "library_id": e.library_id,
                "type": e.type,
                "path": e.path,
                "file_name": name,
                "dir": posixpath.dirname(e.path),
                "checksum": None,
                "file_size": e.file_size,
                "mtime": e.file_modified_at,
                "created": e.file_modified_at,
                "is_favorite": False,
                "device_asset_id": "".join(name.split()),
                "device_id": "Library Import",
                "sidecar": e.sidecar_mtime_ms,
                "at": e.occurred_at,
                "seq": seq,
            },
        ),
        *_scan_inc("new", e.scan_id),
    ]


def apply_asset_uploaded(e: ev.AssetUploaded, seq: int) -> list[Op | Increment]:
    return [
        (
            _ASSET_INSERT,
            {
                "id": e.stream_id,
                "owner_id": e.owner_id,
                "library_id": e.library_id,
                "type": e.type,
                "path": e.path,
                "file_name": e.original_file_name,
                "dir": posixpath.dirname(e.path),
                "checksum": e.checksum,
                "file_size": e.file_size,
                "mtime": e.file_modified_at,
                "created": e.file_created_at,
                "is_favorite": e.is_favorite,
                "device_asset_id": e.device_asset_id,
                "device_id": e.device_id,
                "sidecar": 0,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_FILE_CHANGED = text(
    "UPDATE assets SET file_modified_at = :mtime, file_size = :file_size, "
    "sidecar_mtime_ms = :sidecar, metadata_status = 'pending', updated_at = :at, "
    "last_seq = :seq WHERE id = :id"
)


def apply_file_changed(e: ev.FileChanged, seq: int) -> list[Op | Increment]:
    return [
        (
            _FILE_CHANGED,
            {
                "id": e.stream_id,
                "mtime": e.file_modified_at,
                "file_size": e.file_size,
                "sidecar": e.sidecar_mtime_ms,
                "at": e.occurred_at,
                "seq": seq,
            },
        ),
        *_scan_inc("changed", e.scan_id),
    ]


_ASSET_OFFLINE = text(
    "UPDATE assets SET is_offline = true, offline_reason = :reason, updated_at = :at, "
    "last_seq = :seq WHERE id = :id"
)


def apply_asset_offline(e: ev.AssetOffline, seq: int) -> list[Op | Increment]:
    return [
        (
            _ASSET_OFFLINE,
            {"id": e.stream_id, "reason": e.reason.value, "at": e.occurred_at, "seq": seq},
        ),
        *_scan_inc("missing", e.scan_id),
    ]


_ASSET_ONLINE = text(
    "UPDATE assets SET is_offline = false, offline_reason = NULL, "
    "file_modified_at = coalesce(:mtime, file_modified_at), "
    "file_size = coalesce(:file_size, file_size), updated_at = :at, last_seq = :seq "
    "WHERE id = :id"
)


def apply_asset_online(e: ev.AssetOnline, seq: int) -> list[Op | Increment]:
    return [
        (
            _ASSET_ONLINE,
            {
                "id": e.stream_id,
                "mtime": e.file_modified_at,
                "file_size": e.file_size,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_METADATA = text(
    "UPDATE assets SET metadata_status = 'done', metadata_error = NULL, "
    "checksum = :checksum, file_size = :file_size, mime_type = :mime_type, "
    "width = :width, height = :height, orientation = :orientation, "
    "date_time_original = :dto, time_zone = :time_zone, "
    "file_created_at = coalesce(:dto, file_created_at), "
    "local_date_time = coalesce(:local, :dto, local_date_time), "
    "latitude = :latitude, longitude = :longitude, make = :make, model = :model, "
    "lens_model = :lens_model, iso = :iso, exposure_time = :exposure_time, "
    "f_number = :f_number, focal_length = :focal_length, description = :description, "
    "duration_seconds = :duration, thumbnail_key = :thumbnail_key, preview_key = :preview_key, "
    "updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_metadata_extracted(e: ev.MetadataExtracted, seq: int) -> list[Op | Increment]:
    m = e.metadata
    return [
        (
            _METADATA,
            {
                "id": e.stream_id,
                "checksum": m.checksum,
                "file_size": m.file_size,
                "mime_type": m.mime_type,
                "width": m.width,
                "height": m.height,
                "orientation": m.orientation,
                "dto": m.date_time_original,
                "time_zone": m.time_zone,
                "local": m.local_date_time,
                "latitude": m.latitude,
                "longitude": m.longitude,
                "make": m.make,
                "model": m.model,
                "lens_model": m.lens_model,
                "iso": m.iso,
                "exposure_time": m.exposure_time,
                "f_number": m.f_number,
                "focal_length": m.focal_length,
                "description": m.description,
                "duration": m.duration_seconds,
                "thumbnail_key": e.thumbnail_key,
                "preview_key": e.preview_key,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_METADATA_FAILED = text(
    "UPDATE assets SET metadata_status = 'failed', metadata_error = :reason, "
    "checksum = coalesce(:checksum, checksum), file_size = coalesce(:file_size, file_size), "
    "updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_metadata_failed(e: ev.MetadataFailed, seq: int) -> list[Op | Increment]:
    return [
        (
            _METADATA_FAILED,
            {
                "id": e.stream_id,
                "reason": e.reason,
                "checksum": e.checksum,
                "file_size": e.file_size,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_ASSET_REMOVED = text("DELETE FROM assets WHERE id = :id")


def apply_asset_removed(e: ev.AssetRemoved, seq: int) -> list[Op | Increment]:
    return [(_ASSET_REMOVED, {"id": e.stream_id})]


# --- albums ---------------------------------------------------------------------------------

_ALBUM_CREATED = text(
    "INSERT INTO albums (id, owner_id, name, description, thumbnail_asset_id, created_at, "
    "updated_at, last_seq) VALUES (:id, :owner_id, :name, :description, NULL, :at, :at, :seq) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_album_created(e: ev.AlbumCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _ALBUM_CREATED,
            {
                "id": e.stream_id,
                "owner_id": e.owner_id,
                "name": e.name,
                "description": e.description,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_ALBUM_UPDATED = text(
    "UPDATE albums SET name = coalesce(:name, name), "
    "description = coalesce(:description, description), "
    "thumbnail_asset_id = coalesce(:thumb, thumbnail_asset_id), updated_at = :at, "
    "last_seq = :seq WHERE id = :id"
)


def apply_album_updated(e: ev.AlbumUpdated, seq: int) -> list[Op | Increment]:
    return [
        (
            _ALBUM_UPDATED,
            {
                "id": e.stream_id,
                "name": e.name,
                "description": e.description,
                "thumb": e.thumbnail_asset_id,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


# Either side may be gone by the time the event is applied (an album deleted while the scanner
# carried a move into it, an asset removed while a user added it): then there is nothing to add.
_ALBUM_ADD = text(
    "INSERT INTO album_assets (album_id, asset_id, added_at) SELECT :album_id, :asset_id, :at "
    "WHERE EXISTS (SELECT 1 FROM assets WHERE id = :asset_id) "
    "AND EXISTS (SELECT 1 FROM albums WHERE id = :album_id) ON CONFLICT DO NOTHING"
)
_ALBUM_TOUCH = text("UPDATE albums SET updated_at = :at, last_seq = :seq WHERE id = :id")


def apply_assets_added_to_album(e: ev.AssetsAddedToAlbum, seq: int) -> list[Op | Increment]:
    ops: list[Op] = [
        (_ALBUM_ADD, {"album_id": e.stream_id, "asset_id": a, "at": e.occurred_at})
        for a in e.asset_ids
    ]
    return [*ops, (_ALBUM_TOUCH, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_ALBUM_REMOVE = text("DELETE FROM album_assets WHERE album_id = :album_id AND asset_id = :asset_id")


def apply_assets_removed_from_album(e: ev.AssetsRemovedFromAlbum, seq: int) -> list[Op | Increment]:
    ops: list[Op] = [(_ALBUM_REMOVE, {"album_id": e.stream_id, "asset_id": a}) for a in e.asset_ids]
    return [*ops, (_ALBUM_TOUCH, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_ALBUM_DELETED = text("DELETE FROM albums WHERE id = :id")


def apply_album_deleted(e: ev.AlbumDeleted, seq: int) -> list[Op | Increment]:
    return [(_ALBUM_DELETED, {"id": e.stream_id})]


PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {
    ev.ServerInitialized: apply_server_initialized,
    ev.UserCreated: apply_user_created,
    ev.UserUpdated: apply_user_updated,
    ev.ExternalPathSet: apply_external_path_set,
    ev.UserDeleted: apply_user_deleted,
    ev.SessionCreated: apply_session_created,
    ev.SessionEnded: apply_session_ended,
    ev.ApiKeyCreated: apply_api_key_created,
    ev.ApiKeyDeleted: apply_api_key_deleted,
    ev.LibraryCreated: apply_library_created,
    ev.LibraryRenamed: apply_library_renamed,
    ev.ImportPathsChanged: apply_import_paths_changed,
    ev.ExclusionPatternsChanged: apply_exclusion_patterns_changed,
    ev.LibraryScanRequested: apply_library_scan_requested,
    ev.ScanProblemFound: apply_scan_problem_found,
    ev.LibraryScanFinished: apply_library_scan_finished,
    ev.DirectoryIndexed: apply_directory_indexed,
    ev.DirectoryGone: apply_directory_gone,
    ev.LibraryDeletionStarted: apply_library_deletion_started,
    ev.LibraryDeleted: apply_library_deleted,
    ev.FileDiscovered: apply_file_discovered,
    ev.FileChanged: apply_file_changed,
    ev.AssetOffline: apply_asset_offline,
    ev.AssetOnline: apply_asset_online,
    ev.AssetUploaded: apply_asset_uploaded,
    ev.MetadataExtracted: apply_metadata_extracted,
    ev.MetadataFailed: apply_metadata_failed,
    ev.AssetRemoved: apply_asset_removed,
    ev.AlbumCreated: apply_album_created,
    ev.AlbumUpdated: apply_album_updated,
    ev.AssetsAddedToAlbum: apply_assets_added_to_album,
    ev.AssetsRemovedFromAlbum: apply_assets_removed_from_album,
    ev.AlbumDeleted: apply_album_deleted,
}

_missing = set(ev.EVENT_TYPES) - set(PROJECTIONS)
if _missing:  # checked at import: every event in the union has exactly one projection
    raise RuntimeError(f"events without a projection: {sorted(t.__name__ for t in _missing)}")


# Statements that touch rows of several aggregates: everything planned before them runs first.
BARRIERS = frozenset(
    {
        _LIBRARY_ASSETS_DELETED,
        _LIBRARY_SCANS_DELETED,
        _LIBRARY_PROBLEMS_DELETED,
        _ALBUM_ADD,
        _ALBUM_REMOVE,
        _DIR_GONE,
        _LIBRARY_DIRS_DELETED,
    }
)


def _key(stmt: TextClause, params: dict[str, Any]) -> Any:
    """The row an operation touches: the user for sessions and API keys (they reference it),
    else its id. None for a barrier."""
    if stmt in BARRIERS:
        return None
    return params.get("user_id", params.get("id"))


def plan(events: list[tuple[int, ev.BaseEvent]]) -> list[tuple[TextClause, list[dict[str, Any]]]]:
    """Turn a batch of (seq, event) into statements for executemany.

    Operations on different rows commute, so each is given a level: one more than the last
    operation on the same row. Levels run in order and, inside a level, operations that share a
    statement run together; the order of operations on any one row is kept. An operation that
    spans rows (deleting a library's assets, album membership) is a barrier: everything before
    it runs first. Scan counters are summed and applied last.
    """
    out: list[tuple[TextClause, list[dict[str, Any]]]] = []
    levels: list[dict[TextClause, list[dict[str, Any]]]] = []
    row_level: dict[Any, int] = {}
    increments: dict[tuple[str, Any], int] = {}

    def flush() -> None:
        for level in levels:
            out.extend(level.items())
        levels.clear()
        row_level.clear()

    for seq, event in events:
        for op in PROJECTIONS[type(event)](event, seq):
            if isinstance(op, Increment):
                increments[op] = increments.get(op, 0) + 1
                continue
            stmt, params = op
            key = _key(stmt, params)
            if key is None:
                flush()
                if out and out[-1][0] is stmt:
                    out[-1][1].append(params)
                else:
                    out.append((stmt, [params]))
                continue
            level = row_level.get(key, -1) + 1
            row_level[key] = level
            if level == len(levels):
                levels.append({})
            levels[level].setdefault(stmt, []).append(params)
    flush()
    for column in _SCAN_ADD:
        rows = [{"id": i, "n": n} for (c, i), n in increments.items() if c == column]
        if rows:
            out.append((_SCAN_ADD[column], rows))
    return out
