"""ISOBMFF containers: a HEIF's stored size and irot/imir as an EXIF orientation; truncation."""

from __future__ import annotations

import os
import struct
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO

from PIL import Image

from services.metadata.reading import CONTENT_ERRORS, is_io_error
from services.metadata.values import EXIF_TRANSPOSE, as_int

if TYPE_CHECKING:
    from collections.abc import Iterable

    from services.metadata.reading import Found

__all__ = ["apply_heif_geometry", "heif_geometry", "truncation"]


def apply_heif_geometry(found: Found, fh: BinaryIO, exif_orientation: object) -> None:
    """Stored size (ispe) and the irot/imir transform of the primary item.

    pillow-heif hands out pixels already transformed and resets EXIF Orientation to 1, so the size
    Pillow reports is the displayed one. When the boxes cannot be read we undo that from the EXIF
    orientation pillow-heif saw.
    """
    try:
        geometry = heif_geometry(fh)
    except CONTENT_ERRORS as exc:
        if is_io_error(exc):
            raise
        geometry = None
    if geometry is not None:
        found.width, found.height, found.orientation = geometry
        return
    orientation = as_int(exif_orientation)
    found.orientation = orientation if orientation in range(1, 9) else 1
    if found.orientation in (5, 6, 7, 8):
        found.width, found.height = found.height, found.width


def _boxes(data: bytes, start: int, end: int) -> Iterable[tuple[str, int, int]]:
    """(type, body_start, box_end) for the ISOBMFF boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def heif_geometry(fh: BinaryIO) -> tuple[int, int, int] | None:
    """(width, height, orientation) of a HEIF's primary item from its ispe/irot/imir properties."""
    meta = _top_level_box(fh, "meta", limit=4 << 20)
    if meta is None or len(meta) < 4:
        return None
    primary: int | None = None
    properties: list[tuple[str, bytes]] = []
    associations: dict[int, list[int]] = {}
    for kind, s, e in _boxes(meta, 4, len(meta)):  # meta is a FullBox: skip version/flags
        if kind == "pitm":
            primary = struct.unpack_from(">H" if meta[s] == 0 else ">I", meta, s + 4)[0]
        elif kind == "iprp":
            for sub, ss, se in _boxes(meta, s, e):
                if sub == "ipco":
                    properties = [(k, meta[ps:pe]) for k, ps, pe in _boxes(meta, ss, se)]
                elif sub == "ipma":
                    associations.update(_ipma(meta, ss, se))
    if primary is None or primary not in associations:
        return None
    size: tuple[int, int] | None = None
    ops: list[tuple[str, int]] = []
    for index in associations[primary]:
        if not 1 <= index <= len(properties):
            continue
        kind, body = properties[index - 1]
        if kind == "ispe" and len(body) >= 12:
            size = struct.unpack_from(">II", body, 4)
        elif kind == "irot" and body:
            ops.append(("irot", body[0] & 3))
        elif kind == "imir" and body:
            ops.append(("imir", body[0] & 1))
    if size is None:
        return None
    return size[0], size[1], _orientation_for(tuple(ops))


def _top_level_box(fh: BinaryIO, wanted: str, limit: int) -> bytes | None:
    """Body of the first top-level ISOBMFF box of a type, seeking past the others (mdat)."""
    for kind, body_start, box_end, _file_end in _top_level_boxes(fh):
        if kind == wanted:
            if box_end - body_start > limit:
                return None
            fh.seek(body_start)
            return fh.read(box_end - body_start)
    return None


def truncation(fh: BinaryIO) -> str | None:
    """Why an ISOBMFF file (HEIF, AVIF, MP4, MOV) is cut short, or None when its top-level boxes
    end where the file does.

    A copy or upload that stopped half way leaves the last box (usually mdat) running past the
    end of the file. libheif decodes such a HEIC anyway and paints the missing tiles green, and a
    video with its index up front still gives a first frame, so this is checked before decoding.
    """
    for kind, _body_start, box_end, file_end in _top_level_boxes(fh):
        if box_end > file_end:
            return f"truncated: its '{kind}' box needs {box_end} bytes, the file has {file_end}"
    return None


def _top_level_boxes(fh: BinaryIO, most: int = 64) -> Iterable[tuple[str, int, int, int]]:
    """(type, body_start, box_end, file_end) of the first top-level boxes, seeking past bodies.

    Stops at the end of the file, at a header that cannot be a box, and after the first box that
    runs past the end of the file (box_end > file_end says so).
    """
    fh.seek(0, os.SEEK_END)
    file_end = fh.tell()
    pos = 0
    for _ in range(most):
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return
        size, kind = struct.unpack_from(">I4s", header)
        header_len = 8
        if size == 1 and len(header) == 16:
            (size,) = struct.unpack_from(">Q", header, 8)
            header_len = 16
        elif size == 0:
            size = file_end - pos
        if size < header_len:
            return
        yield kind.decode("latin-1"), pos + header_len, pos + size, file_end
        if pos + size >= file_end:
            return
        pos += size


def _ipma(data: bytes, start: int, end: int) -> dict[int, list[int]]:
    version, flags = data[start], int.from_bytes(data[start + 1 : start + 4], "big")
    pos = start + 4
    (count,) = struct.unpack_from(">I", data, pos)
    pos += 4
    out: dict[int, list[int]] = {}
    for _ in range(count):
        if pos >= end:
            break
        if version < 1:
            (item,) = struct.unpack_from(">H", data, pos)
            pos += 2
        else:
            (item,) = struct.unpack_from(">I", data, pos)
            pos += 4
        n = data[pos]
        pos += 1
        indices = []
        for _ in range(n):
            if flags & 1:
                (raw,) = struct.unpack_from(">H", data, pos)
                pos += 2
                indices.append(raw & 0x7FFF)
            else:
                indices.append(data[pos] & 0x7F)
                pos += 1
        out[item] = indices
    return out


@lru_cache(maxsize=64)
def _orientation_for(ops: tuple[tuple[str, int], ...]) -> int:
    """EXIF orientation equivalent to HEIF transforms applied in order (irot: 90° CCW steps;
    imir axis 0: mirror about the vertical axis, 1: about the horizontal axis)."""
    probe = Image.frombytes("L", (3, 2), bytes(range(6)))
    shown = probe
    for kind, value in ops:
        if kind == "irot" and value:
            shown = shown.rotate(90 * value, expand=True)
        elif kind == "imir":
            shown = shown.transpose(
                Image.Transpose.FLIP_TOP_BOTTOM if value else Image.Transpose.FLIP_LEFT_RIGHT
            )
    for orientation, method in EXIF_TRANSPOSE.items():
        candidate = probe.transpose(method)
        if candidate.size == shown.size and candidate.tobytes() == shown.tobytes():
            return orientation
    return 1
