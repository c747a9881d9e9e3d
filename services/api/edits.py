"""What a user says about their assets (favourite, archive, description, rating) and the trash.

Every change is an event on the asset: `AssetUpdated` (the fields that change, None for the
rest), `AssetTrashed` and `AssetRestored`; emptying the trash removes the assets for good through
the same path as a forced delete (`uploads.remove_for_good`). Only uploaded assets go to the
trash: Shoebox never deletes an external file, so an external asset is refused, as
`DELETE /api/assets` always refused it (decision 0006, trash in 0018).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from msgspec import UNSET
from sqlalchemy import text

from services.api import schemas as s
from services.api.assets import NOT_DELETING
from services.api.commands.publish import carry_out_each
from services.api.decide import accepted
from services.api.decide import assets as decide
from services.api.uploads import remove_for_good
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Row

    from services.api.auth import AuthUser
    from services.api.context import Context

log = logging.getLogger(__name__)

VISIBILITIES = ("timeline", "archive")

# Immich's fields that Shoebox does not change: refused rather than silently dropped.
_NOT_CHANGED = {
    "date_time_original": "dateTimeOriginal",
    "latitude": "latitude",
    "longitude": "longitude",
    "live_photo_video_id": "livePhotoVideoId",
    "duplicate_id": "duplicateId",
    "date_time_relative": "dateTimeRelative",
    "time_zone": "timeZone",
}

_ROWS = text(
    "SELECT a.id, a.owner_id, a.library_id, a.original_path, a.last_seq, a.is_favorite, "
    "a.visibility, a.user_description, a.description, a.rating, a.deleted_at, "
    "l.type AS library_type FROM assets a JOIN libraries l ON l.id = a.library_id "
    f"WHERE a.id = ANY(:ids) AND {NOT_DELETING}"
)


async def _owned(
    ctx: Context, auth: AuthUser, ids: list[uuid.UUID], permission: str
) -> list[Row[Any]]:
    """The caller's assets of `ids`, in order (decide.owned refuses any other)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    async with ctx.engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(_ROWS, {"ids": wanted})).all()}
    return accepted(decide.owned(auth, wanted, rows, permission))


def wanted_change(dto: s.UpdateAssetDto) -> dict[str, Any]:
    """The fields of AssetUpdated that the request sets, checked (400 with every problem)."""
    problems: list[str] = []
    for attr, name in _NOT_CHANGED.items():
        if getattr(dto, attr, UNSET) is not UNSET:
            problems.append(f"{name} cannot be changed in Shoebox: it follows the file")
    change: dict[str, Any] = {}
    if dto.is_favorite is not UNSET:
        change["is_favorite"] = dto.is_favorite
    visibility = None if dto.visibility is UNSET else dto.visibility
    if visibility is not None and visibility not in VISIBILITIES:
        problems.append(
            "visibility must be one of the following values: timeline, archive "
            "(Shoebox has no hidden or locked assets)"
        )
    if dto.is_archived is not UNSET:
        archived = "archive" if dto.is_archived else "timeline"
        if visibility is not None and visibility != archived:
            problems.append("isArchived and visibility disagree")
        visibility = archived
    if visibility is not None:
        change["visibility"] = visibility
    if dto.description is not UNSET:
        change["description"] = dto.description
    if dto.rating is not UNSET:
        rating = 0 if dto.rating is None else dto.rating
        if rating > 5:
            problems.append("rating must not be greater than 5")
        elif rating < -1:
            problems.append("rating must not be less than -1")
        change["rating"] = rating
    if problems:
        raise InvalidInput("; ".join(problems))
    return change


def _current(row: Row[Any]) -> dict[str, Any]:
    description = row.description if row.user_description is None else row.user_description
    return {
        "is_favorite": row.is_favorite,
        "visibility": row.visibility,
        "description": description,
        "rating": row.rating,
    }


async def update_assets(
    ctx: Context, auth: AuthUser, ids: list[uuid.UUID], dto: s.UpdateAssetDto
) -> None:
    """Record what changes for each asset (nothing for one that already is so)."""
    change = wanted_change(dto)
    rows = await _owned(ctx, auth, ids, "asset.update")
    writes = decide.update_assets(change, {row.id: _current(row) for row in rows})
    if not writes:
        return
    await carry_out_each(ctx, writes)
    log.info("edit: user %s changed %d asset(s): %s", auth.id, len(writes), sorted(change))


async def delete_assets(ctx: Context, auth: AuthUser, ids: list[uuid.UUID], force: bool) -> int:
    """Immich's DELETE /api/assets: uploads go to the trash, or with `force` are removed for
    good (their files deleted). All or nothing: an unknown or foreign id, or an external
    asset, refuses the whole request."""
    rows = await _owned(ctx, auth, ids, "asset.delete")
    if force:
        accepted(decide.deletable(rows))
        return await remove_for_good(ctx, auth, rows, reason="deleted")
    writes = accepted(decide.trash(rows))
    await carry_out_each(ctx, writes)
    log.info("trash: user %s moved %d upload asset(s) to the trash", auth.id, len(writes))
    return len(writes)


_TRASHED = text(
    "SELECT a.id, a.owner_id, a.library_id, a.original_path, a.last_seq, a.deleted_at, "
    "l.type AS library_type FROM assets a JOIN libraries l ON l.id = a.library_id "
    f"WHERE a.owner_id = :owner AND a.deleted_at IS NOT NULL AND {NOT_DELETING} "
    "ORDER BY a.deleted_at, a.id"
)


async def _trashed(ctx: Context, auth: AuthUser) -> list[Row[Any]]:
    async with ctx.engine.connect() as conn:
        return list((await conn.execute(_TRASHED, {"owner": auth.id})).all())


async def _restore(ctx: Context, auth: AuthUser, rows: list[Row[Any]]) -> int:
    writes = decide.restore(rows)
    await carry_out_each(ctx, writes)
    log.info("trash: user %s restored %d asset(s)", auth.id, len(writes))
    return len(writes)


async def restore_trash(ctx: Context, auth: AuthUser) -> int:
    """Everything in the caller's trash comes back to the timeline."""
    return await _restore(ctx, auth, await _trashed(ctx, auth))


async def restore_assets(ctx: Context, auth: AuthUser, ids: list[uuid.UUID]) -> int:
    """These assets come back from the trash (one not in the trash is left as it is)."""
    return await _restore(ctx, auth, await _owned(ctx, auth, ids, "asset.delete"))


async def empty_trash(ctx: Context, auth: AuthUser) -> int:
    """Remove everything in the caller's trash for good (the uploaded files are deleted)."""
    return await remove_for_good(ctx, auth, await _trashed(ctx, auth), reason="trash-emptied")
