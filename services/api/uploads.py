"""POST /api/assets: stream a multipart upload to disk while hashing it, then record AssetUploaded.

The body is never held in memory: `multipart.MultipartUpload` spools file parts to temp files
under `<upload>/.incoming/`, hashing them on the way, and keeps only small form fields. Once the
body is complete and valid, the file is moved to `<upload>/<userId>/<aa>/<bb>/<assetId><ext>` (the
path is recorded relative to the upload location) and `AssetUploaded` is published expecting
subject sequence 0. A refusal means the same bytes were uploaded before by this user (the asset
id is a function of upload library and SHA-1): the answer is `duplicate` with that asset's id.
Whatever goes wrong, the temp files are removed; a file moved into place whose event could not
be recorded is removed too.

Removing an upload asset for good (a forced delete, or emptying the trash: services/api/edits.py)
records AssetRemoved and, once that is projected, deletes its original (and sidecar) from the
upload folder: an upload's bytes belong to Shoebox alone. External libraries' files are never
deleted (the request is refused).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from sqlalchemy import text

from services.api import schemas as s
from services.api.decide import assets as decide
from services.api.media import original_file
from services.api.multipart import MultipartUpload, multipart_boundary
from shared import events as ev
from shared.bus import WrongExpectedSequence
from shared.errors import InvalidInput
from shared.ids import upload_asset_id, upload_library_id
from shared.media import asset_type, extension

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.api.auth import AuthUser
    from services.api.context import Context
    from services.api.multipart import SpooledPart

log = logging.getLogger(__name__)

INCOMING = ".incoming"


def normalize_checksum(value: str) -> str | None:
    """Hex SHA-1 from Immich's checksum forms (40 hex digits or 28 base64 chars), else None."""
    value = value.strip()
    if len(value) == 40:
        try:
            bytes.fromhex(value)
        except ValueError:
            return None
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 20 else None


class UploadForm(msgspec.Struct, frozen=True, kw_only=True):
    """The form fields of an upload, checked."""

    file_created_at: datetime
    file_modified_at: datetime
    device_asset_id: str | None
    device_id: str | None
    filename: str | None
    is_favorite: bool


def _date(fields: dict[str, str], name: str, problems: list[str]) -> datetime:
    raw = fields.get(name, "").strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(f"{name} must be a valid ISO 8601 date string")
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_form(fields: dict[str, str]) -> UploadForm:
    """Immich's AssetMediaCreateDto from the text fields; 400 with every problem at once."""
    problems: list[str] = []
    created = _date(fields, "fileCreatedAt", problems)
    modified = _date(fields, "fileModifiedAt", problems)
    favorite = fields.get("isFavorite", "false").strip().lower()
    if favorite not in ("true", "false", ""):
        problems.append("isFavorite must be a boolean value")
    if problems:
        raise InvalidInput("; ".join(problems))
    return UploadForm(
        file_created_at=created,
        file_modified_at=modified,
        device_asset_id=fields.get("deviceAssetId") or None,
        device_id=fields.get("deviceId") or None,
        filename=os.path.basename(fields["filename"]) if fields.get("filename") else None,
        is_favorite=favorite == "true",
    )


async def find_upload(
    ctx: Context, library_id: uuid.UUID, checksums: list[str]
) -> dict[str, uuid.UUID]:
    """hex SHA-1 -> asset id, among the upload library's assets."""
    if not checksums:
        return {}
    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT checksum, id FROM assets WHERE library_id = :l AND checksum = ANY(:c)"
                ),
                {"l": library_id, "c": checksums},
            )
        ).all()
    return {r.checksum: r.id for r in rows}


def _place(temp: Path, final: Path) -> bool:
    """Move the temp file to its final name; False when that file is already there (the same
    bytes: its name is derived from their SHA-1), in which case the temp file stays."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        return False
    os.replace(temp, final)
    return True


async def publish_upload(ctx: Context, event: ev.AssetUploaded) -> int | None:
    """Record a new asset; None when it exists already. An asset removed earlier starts a new
    life on its own subject (`EventBus.revive`, as a rediscovered external file does)."""
    return await ctx.bus.publish_new(event)


async def bounded(
    chunks: AsyncIterator[bytes], announced: int | None, limit: int
) -> AsyncIterator[bytes]:
    """The body's chunks, refused with 413 once they pass `limit` bytes (at once when the
    Content-Length says so, before anything is read)."""
    if announced is not None and announced > limit:
        raise RequestEntityTooLarge(too_large(limit))
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise RequestEntityTooLarge(too_large(limit))
        yield chunk


def too_large(limit: int) -> str:
    return f"The upload is larger than the limit of {limit} bytes (SHOEBOX_MAX_UPLOAD_SIZE)"


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    try:
        async for _ in chunks:
            pass
    except InternalServerException as e:  # Litestar's "client disconnected prematurely"
        raise InvalidInput("The upload was interrupted") from e


async def upload_asset(
    ctx: Context,
    auth: AuthUser,
    content_type: str,
    checksum_header: str | None,
    chunks: AsyncIterator[bytes],
) -> tuple[uuid.UUID, bool]:
    """Store one uploaded file; returns (asset id, created) — created False for a duplicate."""
    boundary = multipart_boundary(content_type)
    library_id = upload_library_id(auth.id)
    expected_sha1 = None
    if checksum_header:
        expected_sha1 = normalize_checksum(checksum_header)
        if expected_sha1 is None:
            raise InvalidInput("x-immich-checksum must be a hex or base64 SHA-1")
        known = (await find_upload(ctx, library_id, [expected_sha1])).get(expected_sha1)
        outcome = decide.upload(library_id, expected_sha1, known)
        if isinstance(outcome, decide.Duplicate):
            # Immich answers before storing anything; the body is read (not kept) so the
            # connection stays usable.
            await _drain(chunks)
            return outcome.asset_id, False
    upload_root = ctx.settings.upload_path
    incoming = upload_root / INCOMING
    await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
    upload = MultipartUpload(boundary, incoming)
    try:
        try:
            async for chunk in chunks:
                await upload.feed(chunk)
        except InternalServerException as e:  # Litestar's "client disconnected prematurely"
            raise InvalidInput("The upload was interrupted") from e
        await upload.finish()
        form = parse_form(upload.fields)
        asset = upload.files.get("assetData")
        if asset is None:
            raise InvalidInput("assetData is required")
        if asset.size == 0:
            raise InvalidInput("The uploaded file is empty")
        sha1 = asset.sha1_hex
        if expected_sha1 is not None and expected_sha1 != sha1:
            raise InvalidInput("The uploaded file does not match its x-immich-checksum")
        return await _record(ctx, auth, library_id, upload, asset, form)
    finally:
        await upload.discard()


async def _record(
    ctx: Context,
    auth: AuthUser,
    library_id: uuid.UUID,
    upload: MultipartUpload,
    asset: SpooledPart,
    form: UploadForm,
) -> tuple[uuid.UUID, bool]:
    sha1 = asset.sha1_hex
    asset_id = upload_asset_id(library_id, sha1)
    relative = f"{auth.id}/{sha1[:2]}/{sha1[2:4]}/{asset_id}{extension(asset.filename)}"
    final = ctx.settings.upload_path / relative
    kind = asset_type(asset.filename)
    assert kind is not None  # checked when the part's headers arrived
    name = form.filename or asset.filename
    placed = await asyncio.to_thread(_place, asset.path, final)
    sidecar = upload.files.get("sidecarData")
    sidecar_path = Path(f"{final}.xmp")
    placed_sidecar = False
    if sidecar is not None and sidecar.size and placed:
        placed_sidecar = await asyncio.to_thread(_place, sidecar.path, sidecar_path)
    event = ev.AssetUploaded(
        stream_id=asset_id,
        library_id=library_id,
        owner_id=auth.id,
        path=relative,
        original_file_name=name,
        type=kind,
        checksum=sha1,
        file_size=asset.size,
        file_created_at=form.file_created_at,
        file_modified_at=form.file_modified_at,
        # Immich's CLI no longer sends these; the old CLI's convention fills them in.
        device_asset_id=form.device_asset_id or "".join(f"{name}-{asset.size}".split()),
        device_id=form.device_id or "unknown",
        is_favorite=form.is_favorite,
    )
    try:
        seq = await publish_upload(ctx, event)
    except BaseException:
        if placed:
            await asyncio.to_thread(_unlink, final, sidecar_path if placed_sidecar else None)
        raise
    if seq is None:
        log.info("upload: user %s sent asset %s again (duplicate)", auth.id, asset_id)
        return asset_id, False
    log.info(
        "upload: user %s created asset %s at %s (%d bytes)", auth.id, asset_id, relative, asset.size
    )
    await ctx.settle(seq)
    return asset_id, True


def _unlink(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


async def remove_upload_files(upload_root: Path, path: str) -> None:
    """Delete an upload asset's original and its sidecar (after its AssetRemoved is recorded)."""
    final = original_file(upload_root, path)
    await asyncio.to_thread(_unlink, final, Path(f"{final}.xmp"))


# --- deleting uploads -----------------------------------------------------------------------


async def _remove(ctx: Context, event: ev.AssetRemoved, expected: int) -> int | None:
    """Publish a removal; on a concurrent change (metadata landing, say) retry on the newest
    sequence. None when the asset was already removed by someone else."""
    for _ in range(5):
        try:
            return await ctx.bus.publish(event, expected_last_seq=expected)
        except WrongExpectedSequence:
            expected, last = await ctx.bus.last_event("asset", event.stream_id)
            if isinstance(last, ev.AssetRemoved) or last is None:
                return None
            event = msgspec.structs.replace(event, event_id=uuid.uuid4())
    raise InvalidInput(f"Asset {event.stream_id} keeps changing; retry the deletion")


async def remove_for_good(ctx: Context, auth: AuthUser, rows: list[Any], reason: str) -> int:
    """Remove upload assets for good (a forced delete, or emptying the trash).

    `rows` are the caller's upload assets (id, library_id, original_path, last_seq), checked
    by the caller. After each AssetRemoved is recorded and projected, the original file (and
    sidecar) is deleted from the upload folder — unless the asset has started a new life
    meanwhile."""
    removed: list[tuple[Any, int]] = []
    for row in rows:
        seq = await _remove(
            ctx,
            ev.AssetRemoved(stream_id=row.id, library_id=row.library_id, reason=reason),
            row.last_seq,
        )
        if seq is not None:
            removed.append((row, seq))
    if removed:
        await ctx.settle(max(seq for _, seq in removed))
    for row, seq in removed:
        newest, _ = await ctx.bus.last_event("asset", row.id)
        if newest == seq:
            await remove_upload_files(ctx.settings.upload_path, row.original_path)
    log.info("delete: user %s removed %d upload asset(s) (%s)", auth.id, len(removed), reason)
    return len(removed)


async def bulk_upload_check(
    ctx: Context, auth: AuthUser, dto: s.AssetBulkUploadCheckDto
) -> s.AssetBulkUploadCheckResponseDto:
    """Which of these files (by SHA-1) the caller has uploaded already."""
    checksums: list[str] = []
    for item in dto.assets:
        hex_sha1 = normalize_checksum(item.checksum)
        if hex_sha1 is None:
            raise InvalidInput(f"checksum of {item.id} must be a hex or base64 SHA-1")
        checksums.append(hex_sha1)
    known = await find_upload(ctx, upload_library_id(auth.id), sorted(set(checksums)))
    trashed: set[uuid.UUID] = set()
    if known:
        async with ctx.engine.connect() as conn:
            trashed = {
                r.id
                for r in await conn.execute(
                    text("SELECT id FROM assets WHERE id = ANY(:ids) AND deleted_at IS NOT NULL"),
                    {"ids": list(known.values())},
                )
            }
    items = [(item.id, sha1) for item, sha1 in zip(dto.assets, checksums, strict=True)]
    return decide.bulk_upload_check(items, known, trashed)
