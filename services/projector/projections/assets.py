"""Projections of assets: discovered, uploaded, changed, offline, read, edited, trashed, removed."""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime

from sqlalchemy import text

from services.projector.projections.base import Increment, Op, Projection, scan_inc, set_form
from shared import events as ev

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
        *scan_inc("new", e.scan_id),
    ]


# A folder's births, one statement for all of them: the files as arrays, unnested (near the
# speed of COPY; a row per file through executemany took the most of a replay). A birth is
# stored on the folder's subject, not the asset's: the row's position is its own subject's,
# nothing (0) for a first life, the removal's (and what came after it) for an asset born again
# (decision 0030). A barrier: whatever the batch did before it (a removal of one of these
# assets) runs first.
_FOLDER_BIRTHS = text(
    "INSERT INTO assets (id, owner_id, library_id, type, original_path, original_file_name, dir, "
    "checksum, file_size, file_modified_at, file_created_at, local_date_time, is_offline, "
    "offline_reason, is_favorite, device_asset_id, device_id, metadata_status, mime_type, "
    "sidecar_mtime_ms, created_at, updated_at, last_seq) "
    "SELECT u.id, CAST(:owner_id AS uuid), CAST(:library_id AS uuid), u.type, u.path, u.name, "
    "CAST(:dir AS text), NULL, u.size, u.mtime, u.mtime, u.mtime, false, NULL, false, u.device, "
    "'Library Import', 'pending', NULL, u.sidecar, CAST(:at AS timestamptz), "
    "CAST(:at AS timestamptz), coalesce(t.last_seq, 0) "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:paths AS text[]), "
    "CAST(:names AS text[]), CAST(:sizes AS bigint[]), CAST(:mtimes AS timestamptz[]), "
    "CAST(:devices AS text[]), CAST(:sidecars AS bigint[])) "
    "AS u(id, type, path, name, size, mtime, device, sidecar) "
    "LEFT JOIN asset_tombstones t ON t.id = u.id "
    "ON CONFLICT (id) DO NOTHING"
)
_FOLDER_POSITION = text(
    "INSERT INTO folders (id, library_id, path, last_seq) VALUES (:id, :library_id, :path, :seq) "
    "ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq "
    "WHERE folders.last_seq < excluded.last_seq"
)
BARRIERS = frozenset({_FOLDER_BIRTHS})


def apply_files_discovered(e: ev.FilesDiscovered, seq: int) -> list[Op | Increment]:
    paths = [e.path_of(f) for f in e.files]
    births = {
        "owner_id": e.owner_id,
        "library_id": e.library_id,
        "dir": e.folder,
        "at": e.occurred_at,
        "ids": e.asset_ids(paths),
        "types": [f.type for f in e.files],
        "paths": paths,
        "names": [f.name for f in e.files],
        "sizes": [f.size for f in e.files],
        "mtimes": [datetime.fromtimestamp(f.mtime_ms / 1000, UTC) for f in e.files],
        "devices": ["".join(f.name.split()) for f in e.files],
        "sidecars": [f.sidecar_mtime_ms for f in e.files],
    }
    return [
        (
            _FOLDER_POSITION,
            {"id": e.stream_id, "library_id": e.library_id, "path": e.folder, "seq": seq},
        ),
        (_FOLDER_BIRTHS, births),
        *scan_inc("new", e.scan_id, len(e.files)),
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
        *scan_inc("changed", e.scan_id),
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
        *scan_inc("missing", e.scan_id),
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
    "thumbhash = :thumbhash, updated_at = :at, last_seq = :seq WHERE id = :id"
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
                "thumbhash": e.thumbhash,
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
_TOMBSTONE = text(
    "INSERT INTO asset_tombstones (id, library_id, last_seq) VALUES (:id, :library_id, :seq) "
    "ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq "
    "WHERE asset_tombstones.last_seq < excluded.last_seq"
)


def apply_asset_removed(e: ev.AssetRemoved, seq: int) -> list[Op | Increment]:
    return [
        (_ASSET_REMOVED, {"id": e.stream_id}),
        (_TOMBSTONE, {"id": e.stream_id, "library_id": e.library_id, "seq": seq}),
    ]


_ASSET_UPDATED = text(
    "UPDATE assets SET is_favorite = coalesce(:is_favorite, is_favorite), "
    "visibility = coalesce(:visibility, visibility), "
    "user_description = coalesce(:description, user_description), "
    "rating = coalesce(:rating, rating), edited = true, updated_at = :at, last_seq = :seq "
    "WHERE id = :id"
)


def apply_asset_updated(e: ev.AssetUpdated, seq: int) -> list[Op | Increment]:
    return [
        (
            _ASSET_UPDATED,
            {
                "id": e.stream_id,
                "is_favorite": e.is_favorite,
                "visibility": e.visibility,
                "description": e.description,
                "rating": e.rating,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_ASSET_TRASHED = text(
    "UPDATE assets SET deleted_at = coalesce(deleted_at, :at), updated_at = :at, "
    "last_seq = :seq WHERE id = :id"
)


def apply_asset_trashed(e: ev.AssetTrashed, seq: int) -> list[Op | Increment]:
    return [(_ASSET_TRASHED, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_ASSET_RESTORED = text(
    "UPDATE assets SET deleted_at = NULL, updated_at = :at, last_seq = :seq WHERE id = :id"
)


def apply_asset_restored(e: ev.AssetRestored, seq: int) -> list[Op | Increment]:
    return [(_ASSET_RESTORED, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


# The PostgreSQL type of each parameter of the per-asset updates (the type of the column it is
# written to, shared/schema.py), for their set-based forms: a run of one of them in a plan
# level (a replay's MetadataExtracted, a rescan's FileChanged or AssetOffline) is one UPDATE
# over unnested arrays instead of one execution per asset (services/projector/send.py).
_TYPES = {
    "id": "uuid",
    **dict.fromkeys(["at", "mtime", "dto", "local"], "timestamptz"),
    **dict.fromkeys(["seq", "file_size", "sidecar"], "bigint"),
    **dict.fromkeys(["width", "height", "orientation", "iso", "rating"], "integer"),
    **dict.fromkeys(["latitude", "longitude", "f_number", "focal_length", "duration"], "float8"),
    **dict.fromkeys(
        ["reason", "checksum", "mime_type", "time_zone", "make", "model", "lens_model"], "text"
    ),
    **dict.fromkeys(
        ["exposure_time", "description", "thumbnail_key", "preview_key", "visibility"], "text"
    ),
    "thumbhash": "bytea",
    "is_favorite": "boolean",
}
SET_BASED = {
    stmt: set_form(stmt, _TYPES)
    for stmt in (
        _FILE_CHANGED,
        _ASSET_OFFLINE,
        _ASSET_ONLINE,
        _METADATA,
        _METADATA_FAILED,
        _ASSET_UPDATED,
        _ASSET_TRASHED,
        _ASSET_RESTORED,
    )
}

PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {
    ev.FileDiscovered: apply_file_discovered,
    ev.FilesDiscovered: apply_files_discovered,
    ev.AssetUploaded: apply_asset_uploaded,
    ev.FileChanged: apply_file_changed,
    ev.AssetOffline: apply_asset_offline,
    ev.AssetOnline: apply_asset_online,
    ev.MetadataExtracted: apply_metadata_extracted,
    ev.MetadataFailed: apply_metadata_failed,
    ev.AssetRemoved: apply_asset_removed,
    ev.AssetUpdated: apply_asset_updated,
    ev.AssetTrashed: apply_asset_trashed,
    ev.AssetRestored: apply_asset_restored,
}
