"""Builders of real file trees for scanner and metadata tests."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from PIL import Image

_JPEG_CACHE: dict[tuple[int, int, tuple[int, int, int]], bytes] = {}


def jpeg_bytes(
    size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    key = (*size, color)
    if key not in _JPEG_CACHE:
        buf = io.BytesIO()
        Image.new("RGB", size, color).save(buf, "JPEG", quality=80)
        _JPEG_CACHE[key] = buf.getvalue()
    return _JPEG_CACHE[key]


def make_tree(root: Path, files: dict[str, bytes | None]) -> dict[str, Path]:
    """Create files below root (None -> a small JPEG); returns name -> real path."""
    out = {}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes() if data is None else data)
        out[rel] = Path(os.path.realpath(path))
    return out


def set_mtime(path: Path, seconds: float) -> None:
    os.utime(path, (seconds, seconds))


def backdate(root: Path, seconds: float = 1_600_000_000) -> None:
    """Set the mtime of every folder (and file) below root into the past, as on a library
    that has sat on disk for a while (fresh folders are re-listed: see MTIME_GUARD_NS)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (seconds, seconds), follow_symlinks=False)
    for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        os.utime(dirpath, (seconds, seconds))


def png_bomb(path: Path, side: int = 50_000) -> Path:
    """A 1-bit grey PNG of side x side blank pixels, a few hundred KB on disk (zlib's ~1000:1 on
    zeros), which Pillow decodes to side*side bytes (2.5 GB for 50,000)."""
    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the packed pixels

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", data))
        fh.write(chunk(b"IEND", b""))
    return path
