"""POST /api/assets: stream a multipart upload to disk while hashing it, then record AssetUploaded.

The body is never held in memory: python-multipart's push parser is fed the chunks of
`request.stream()`, file parts go to a temp file under `<upload>/.incoming/` (written and hashed
in a worker thread, about a MiB at a time), and only small form fields are kept. Once the body
is complete and valid, the file is moved to `<upload>/<userId>/<aa>/<bb>/<assetId><ext>` (the
path is recorded relative to the upload location) and `AssetUploaded` is published expecting
subject sequence 0. A refusal means the same bytes were uploaded before by this user (the asset
id is a function of upload library and SHA-1): the answer is `duplicate` with that asset's id.
Whatever goes wrong, the temp files are removed; a file moved into place whose event could not
be recorded is removed too.

Deleting an upload asset records AssetRemoved and, once that is projected, deletes its original
(and sidecar) from the upload folder: Shoebox has no trash, and an upload's bytes belong to
Shoebox alone. External libraries' files are never deleted (the request is refused).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.exceptions import InternalServerException
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import text

from services.api import schemas as s
from services.api.assets import original_file, require_permission
from shared import events as ev
from shared.bus import WrongExpectedSequence
from shared.errors import InvalidInput
from shared.ids import upload_asset_id, upload_library_id
from shared.media import SIDECAR_EXTENSIONS, asset_type, extension

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.api.auth import AuthUser
    from services.api.context import Context

log = logging.getLogger(__name__)

FILE_FIELDS = ("assetData", "sidecarData")
MAX_FIELD_BYTES = 64 * 1024  # a form field is a date or a name; anything bigger is abuse
MAX_HEADER_BYTES = 8 * 1024
FLUSH_BYTES = 1 << 20  # write to disk (in a thread) once this much file data is pending
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


@dataclass
class SpooledPart:
    """One file part on its way to disk."""

    field_name: str
    filename: str
    path: Path
    sha1: Any = field(default_factory=hashlib.sha1)
    size: int = 0
    fh: Any = None

    def write(self, chunks: list[bytes]) -> None:
        """Runs in a worker thread: hash and append."""
        if self.fh is None:
            self.fh = open(self.path, "xb")  # noqa: SIM115 - closed by close()
        for chunk in chunks:
            self.sha1.update(chunk)
            self.fh.write(chunk)
            self.size += len(chunk)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    @property
    def sha1_hex(self) -> str:
        return str(self.sha1.hexdigest())


class MultipartUpload:
    """A push parser for one multipart body: fields in memory, file parts spooled to disk."""

    def __init__(self, boundary: bytes, incoming: Path, type_of: Any = asset_type) -> None:
        self.incoming = incoming
        self.fields: dict[str, str] = {}
        self.files: dict[str, SpooledPart] = {}
        self.ended = False
        self.error: InvalidInput | None = None
        self._type_of = type_of
        self._headers: dict[str, str] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._field: str | None = None
        self._value = bytearray()
        self._part: SpooledPart | None = None
        self._skip = False
        self._pending: list[tuple[SpooledPart, bytes]] = []
        self._pending_bytes = 0
        self.parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    # --- parser callbacks (synchronous, in memory only) -----------------------------------

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = InvalidInput(message)

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._field = None
        self._part = None
        self._skip = False
        self._value.clear()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._header_bytes += end - start

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._header_bytes += end - start

    def _header_end(self) -> None:
        if self._header_bytes > MAX_HEADER_BYTES:
            self._fail("A multipart part has too large headers")
        name = self._header_field.decode("latin-1").strip().lower()
        # latin-1 keeps the bytes: parse_options_header encodes back to them, and names in
        # Content-Disposition are UTF-8 (browsers, undici and httpx send them raw).
        self._headers[name] = self._header_value.decode("latin-1").strip()
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self._field = name
            return
        if name not in FILE_FIELDS or name in self.files or self.error is not None:
            self._skip = True  # a file field Immich does not define: ignored, like Immich
            return
        original = os.path.basename(filename.decode("utf-8", "replace").replace("\\", "/"))
        if name == "assetData" and self._type_of(original) is None:
            self._fail(f"Unsupported file type {original}")
            self._skip = True
            return
        if name == "sidecarData" and extension(original) not in SIDECAR_EXTENSIONS:
            self._skip = True
            return
        self._part = SpooledPart(name, original, self.incoming / f"{uuid.uuid4().hex}.part")
        self.files[name] = self._part

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._skip or self.error is not None:
            return
        if self._part is not None:
            chunk = data[start:end]
            self._pending.append((self._part, chunk))
            self._pending_bytes += len(chunk)
        elif self._field is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                self._fail(f"{self._field} is too long")

    def _part_end(self) -> None:
        if self._field is not None and not self._skip:
            self.fields[self._field] = self._value.decode("utf-8", "replace")
        self._field = None
        self._part = None
        self._value.clear()

    def _end(self) -> None:
        self.ended = True

    # --- async driving --------------------------------------------------------------------

    async def feed(self, chunk: bytes) -> None:
        """Parse one chunk of the body; write file data to disk once enough is pending."""
        if not chunk:
            return
        try:
            self.parser.write(chunk)
        except MultipartParseError as e:
            raise InvalidInput(f"Malformed multipart body: {e}") from e
        if self.error is not None:
            raise self.error
        if self._pending_bytes >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        by_part: dict[int, tuple[SpooledPart, list[bytes]]] = {}
        for part, chunk in pending:
            by_part.setdefault(id(part), (part, []))[1].append(chunk)
        for part, chunks in by_part.values():
            await asyncio.to_thread(part.write, chunks)

    async def finish(self) -> None:
        """The body ended: write what is pending; refuse a body that stopped mid-way."""
        if not self.ended:
            raise InvalidInput("The multipart body is incomplete (truncated upload?)")
        await self._flush()
        for part in self.files.values():
            await asyncio.to_thread(part.close)

    async def discard(self) -> None:
        """Close and remove every temp file that is still there."""
        def _remove() -> None:
            for part in self.files.values():
                part.close()
                with contextlib.suppress(FileNotFoundError):
                    part.path.unlink()
        await asyncio.to_thread(_remove)


def _boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("Expected a multipart/form-data body with a boundary")
    return boundary


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
        file_created_at=created, file_modified_at=modified,
        device_asset_id=fields.get("deviceAssetId") or None,
        device_id=fields.get("deviceId") or None,
        filename=os.path.basename(fields["filename"]) if fields.get("filename") else None,
        is_favorite=favorite == "true",
    )


async def find_upload(ctx: Context, library_id: uuid.UUID,
                      checksums: list[str]) -> dict[str, uuid.UUID]:
    """hex SHA-1 -> asset id, among the upload library's assets."""
    if not checksums:
        return {}
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT checksum, id FROM assets WHERE library_id = :l AND checksum = ANY(:c)"),
            {"l": library_id, "c": checksums})).all()
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
    life on its own subject (as a rediscovered external file does in the scanner)."""
    try:
        return await ctx.bus.publish(event, expected_last_seq=0)
    except WrongExpectedSequence:
        seq, last = await ctx.bus.last_event("asset", event.stream_id)
        if not isinstance(last, ev.AssetRemoved):
            return None
        try:
            return await ctx.bus.publish(msgspec.structs.replace(event, event_id=uuid.uuid4()),
                                         expected_last_seq=seq)
        except WrongExpectedSequence:
            return None  # someone revived it at the same instant: theirs is the asset


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    try:
        async for _ in chunks:
            pass
    except InternalServerException as e:  # Litestar's "client disconnected prematurely"
        raise InvalidInput("The upload was interrupted") from e


async def upload_asset(ctx: Context, auth: AuthUser, content_type: str,
                       checksum_header: str | None,
                       chunks: AsyncIterator[bytes]) -> tuple[uuid.UUID, bool]:
    """Store one uploaded file; returns (asset id, created) — created False for a duplicate."""
    require_permission(auth, "asset.upload")
    boundary = _boundary(content_type)
    library_id = upload_library_id(auth.id)
    expected_sha1 = None
    if checksum_header:
        expected_sha1 = normalize_checksum(checksum_header)
        if expected_sha1 is None:
            raise InvalidInput("x-immich-checksum must be a hex or base64 SHA-1")
        known = (await find_upload(ctx, library_id, [expected_sha1])).get(expected_sha1)
        if known is not None:
            # Immich answers before storing anything; the body is read (not kept) so the
            # connection stays usable.
            await _drain(chunks)
            return known, False
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


async def _record(ctx: Context, auth: AuthUser, library_id: uuid.UUID, upload: MultipartUpload,
                  asset: SpooledPart, form: UploadForm) -> tuple[uuid.UUID, bool]:
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
        stream_id=asset_id, library_id=library_id, owner_id=auth.id, path=relative,
        original_file_name=name, type=kind, checksum=sha1, file_size=asset.size,
        file_created_at=form.file_created_at, file_modified_at=form.file_modified_at,
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
    log.info("upload: user %s created asset %s at %s (%d bytes)", auth.id, asset_id, relative,
             asset.size)
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

EXTERNAL_DELETE_REFUSED = (
    "Shoebox never deletes files of external libraries: remove or exclude the file on disk "
    "(the asset goes offline), then remove offline assets from the library")


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


async def delete_assets(ctx: Context, auth: AuthUser, ids: list[uuid.UUID]) -> int:
    """Remove upload assets for good (Shoebox has no trash, so `force` changes nothing).

    All or nothing: an unknown or foreign id, or an external asset, refuses the whole request.
    After each AssetRemoved is recorded and projected, the original file (and sidecar) is
    deleted from the upload folder — unless the asset has started a new life meanwhile."""
    require_permission(auth, "asset.delete")
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return 0
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT a.id, a.owner_id, a.library_id, a.original_path, a.last_seq, "
            "l.type AS library_type FROM assets a JOIN libraries l ON l.id = a.library_id "
            "WHERE a.id = ANY(:ids)"), {"ids": wanted})).all()
    by_id = {r.id: r for r in rows}
    for asset_id in wanted:
        row = by_id.get(asset_id)
        if row is None or row.owner_id != auth.id:
            raise InvalidInput("Not found or no asset.delete access")
        if row.library_type == "EXTERNAL":
            raise InvalidInput(EXTERNAL_DELETE_REFUSED)
    removed: list[tuple[Any, int]] = []
    for asset_id in wanted:
        row = by_id[asset_id]
        seq = await _remove(ctx, ev.AssetRemoved(stream_id=asset_id, library_id=row.library_id,
                                                 reason="deleted"), row.last_seq)
        if seq is not None:
            removed.append((row, seq))
    if removed:
        await ctx.settle(max(seq for _, seq in removed))
    for row, seq in removed:
        newest, _ = await ctx.bus.last_event("asset", row.id)
        if newest == seq:
            await remove_upload_files(ctx.settings.upload_path, row.original_path)
    log.info("delete: user %s removed %d upload asset(s)", auth.id, len(removed))
    return len(removed)


async def bulk_upload_check(ctx: Context, auth: AuthUser,
                            dto: s.AssetBulkUploadCheckDto) -> s.AssetBulkUploadCheckResponseDto:
    """Which of these files (by SHA-1) the caller has uploaded already."""
    require_permission(auth, "asset.upload")
    checksums: list[str] = []
    for item in dto.assets:
        hex_sha1 = normalize_checksum(item.checksum)
        if hex_sha1 is None:
            raise InvalidInput(f"checksum of {item.id} must be a hex or base64 SHA-1")
        checksums.append(hex_sha1)
    known = await find_upload(ctx, upload_library_id(auth.id), sorted(set(checksums)))
    results = []
    for item, hex_sha1 in zip(dto.assets, checksums, strict=True):
        asset_id = known.get(hex_sha1)
        if asset_id is None:
            results.append(s.AssetBulkUploadCheckResult(id=item.id, action="accept"))
        else:
            results.append(s.AssetBulkUploadCheckResult(
                id=item.id, action="reject", reason="duplicate", asset_id=str(asset_id),
                is_trashed=False))
    return s.AssetBulkUploadCheckResponseDto(results=results)
