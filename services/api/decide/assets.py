"""Decisions on assets: uploads (no two share a SHA-1 in a library), edits and the trash."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.api import schemas as s
from services.api.decide import Refusal, Write, refuse
from shared import events as ev
from shared.errors import InvalidInput
from shared.ids import upload_asset_id

if TYPE_CHECKING:
    from services.api.auth import AuthUser

EXTERNAL_DELETE_REFUSED = (
    "Shoebox never deletes files of external libraries: remove or exclude the file on disk "
    "(the asset goes offline), then remove offline assets from the library"
)


@dataclass(frozen=True)
class Duplicate:
    """The same bytes were uploaded before: Immich answers with the existing asset."""

    asset_id: uuid.UUID


def upload(library_id: uuid.UUID, sha1: str, existing: uuid.UUID | None) -> Duplicate | uuid.UUID:
    """No two uploads share a SHA-1 in a library: with an asset of these bytes already there
    the answer is that asset, as a duplicate; otherwise the new asset's id (a function of the
    library and the SHA-1, published with expected 0, so a racing upload is refused too)."""
    if existing is not None:
        return Duplicate(existing)
    return upload_asset_id(library_id, sha1)


def bulk_upload_check(
    items: list[tuple[str, str]], known: dict[str, uuid.UUID], trashed: set[uuid.UUID]
) -> s.AssetBulkUploadCheckResponseDto:
    """Immich's answer per (client id, hex SHA-1): accept, or reject as a duplicate of the
    caller's asset with these bytes (saying whether it is in the trash)."""
    results = []
    for item_id, sha1 in items:
        asset_id = known.get(sha1)
        if asset_id is None:
            results.append(s.AssetBulkUploadCheckResult(id=item_id, action="accept"))
        else:
            results.append(
                s.AssetBulkUploadCheckResult(
                    id=item_id,
                    action="reject",
                    reason="duplicate",
                    asset_id=str(asset_id),
                    is_trashed=asset_id in trashed,
                )
            )
    return s.AssetBulkUploadCheckResponseDto(results=results)


def owned(
    actor: AuthUser, ids: list[uuid.UUID], rows: dict[uuid.UUID, Any], permission: str
) -> list[Any] | Refusal:
    """The caller's assets of `ids`, in order (rows carry `owner_id`); any other id refuses
    the whole request with Immich's `Not found or no <permission> access` (admins included,
    as in Immich)."""
    out = []
    for asset_id in dict.fromkeys(ids):
        row = rows.get(asset_id)
        if row is None or row.owner_id != actor.id:
            return refuse(InvalidInput, f"Not found or no {permission} access")
        out.append(row)
    return out


def update_assets(change: dict[str, Any], current: dict[uuid.UUID, dict[str, Any]]) -> list[Write]:
    """AssetUpdated with the fields that change, for each asset whose value is not already so
    (unguarded: a user's edit and the scanner's facts touch different fields)."""
    writes = []
    for asset_id, values in current.items():
        fields = {k: v for k, v in change.items() if values[k] != v}
        if fields:
            writes.append(Write((ev.AssetUpdated(stream_id=asset_id, **fields),), None))
    return writes


def trash(rows: list[Any]) -> list[Write] | Refusal:
    """Uploads go to the trash (one already there stays); an external asset refuses the whole
    request: Shoebox never deletes its file."""
    if refusal := deletable(rows):
        return refusal
    return [
        Write((ev.AssetTrashed(stream_id=r.id, library_id=r.library_id),), None)
        for r in rows
        if r.deleted_at is None
    ]


def deletable(rows: list[Any]) -> Refusal | None:
    """Only uploads are deleted, never an external library's file."""
    if any(r.library_type == "EXTERNAL" for r in rows):
        return refuse(InvalidInput, EXTERNAL_DELETE_REFUSED)
    return None


def restore(rows: list[Any]) -> list[Write]:
    """Assets in the trash come back (one not in the trash is left as it is)."""
    return [
        Write((ev.AssetRestored(stream_id=r.id, library_id=r.library_id),), None)
        for r in rows
        if r.deleted_at is not None
    ]
