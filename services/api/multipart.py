"""Stream a multipart/form-data body: small form fields in memory, file parts hashed to disk."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from shared.errors import InvalidInput
from shared.media import SIDECAR_EXTENSIONS, asset_type, extension

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MultipartUpload", "SpooledPart", "multipart_boundary"]

# The body is never held in memory: python-multipart's push parser is fed the chunks of
# `request.stream()`, file parts go to a temp file in the caller's incoming folder (written and
# hashed in a worker thread, about a MiB at a time), and only small form fields are kept.

# Bounds, checked as the bytes arrive (before any work is done on them): Immich's upload form has
# about a dozen fields, each a date, an id or a name.
FILE_FIELDS = ("assetData", "sidecarData")
MAX_PARTS = 64
MAX_FIELD_BYTES = 64 * 1024  # one form field
MAX_FORM_BYTES = 256 * 1024  # every form field together (only these are held in memory)
MAX_HEADER_BYTES = 8 * 1024  # the headers of one part
# The parser is fed at most this much at a time, so that no bound is checked later than one
# slice after it is passed (python-multipart walks headers byte by byte in Python).
FEED_BYTES = 64 * 1024
FLUSH_BYTES = 1 << 20  # write to disk (in a thread) once this much file data is pending


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
        self.error: InvalidInput | RequestEntityTooLarge | None = None
        self._type_of = type_of
        self._headers: dict[str, str] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._parts = 0
        self._form_bytes = 0
        self._field: str | None = None
        self._value = bytearray()
        self._part: SpooledPart | None = None
        self._skip = False
        self._pending: list[tuple[SpooledPart, bytes]] = []
        self._pending_bytes = 0
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    # --- parser callbacks (synchronous, in memory only) -----------------------------------

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = InvalidInput(message)

    def _too_large(self, message: str) -> None:
        if self.error is None:
            self.error = RequestEntityTooLarge(message)

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            self._fail(f"The multipart body has more than {MAX_PARTS} parts")
        self._headers = {}
        self._header_bytes = 0
        self._field = None
        self._part = None
        self._skip = False
        self._value.clear()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes += end - start
        if self._header_bytes > MAX_HEADER_BYTES:
            self._too_large(f"A multipart part has more than {MAX_HEADER_BYTES} bytes of headers")
        elif self.error is None:
            self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes += end - start
        if self._header_bytes > MAX_HEADER_BYTES:
            self._too_large(f"A multipart part has more than {MAX_HEADER_BYTES} bytes of headers")
        elif self.error is None:
            self._header_value += data[start:end]

    def _header_end(self) -> None:
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
        if "\x00" in original:
            self._fail("filename must not contain NUL characters")
            self._skip = True
            return
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
            self._form_bytes += end - start
            if end - start + len(self._value) > MAX_FIELD_BYTES:
                self._too_large(f"{self._field} is longer than {MAX_FIELD_BYTES} bytes")
            elif self._form_bytes > MAX_FORM_BYTES:
                self._too_large(f"The form fields are longer than {MAX_FORM_BYTES} bytes together")
            else:
                self._value += data[start:end]

    def _part_end(self) -> None:
        if self._field is not None and not self._skip and self.error is None:
            value = self._value.decode("utf-8", "replace")
            if "\x00" in value or "\x00" in self._field:
                # The one rule of services/api/edge.py: the read models cannot store a NUL.
                self._fail(f"{self._field or 'a form field'} must not contain NUL characters")
            self.fields[self._field] = value
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
        view = memoryview(chunk)
        for start in range(0, len(chunk), FEED_BYTES):
            piece = chunk if len(chunk) <= FEED_BYTES else bytes(view[start : start + FEED_BYTES])
            try:
                self.parser.write(piece)
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


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type; InvalidInput for anything else."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("Expected a multipart/form-data body with a boundary")
    return boundary
