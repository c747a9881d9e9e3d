"""RAW files' TIFF structure: walk the IFD chain and SubIFDs for image sizes and embedded JPEGs."""

from __future__ import annotations

import struct
from typing import BinaryIO, NamedTuple

__all__ = ["RAW_EXTENSIONS", "TiffImage", "scan_tiff_images"]

RAW_EXTENSIONS = frozenset(
    {
        ".3fr", ".ari", ".arw", ".cap", ".cin", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf",
        ".fff", ".iiq", ".k25", ".kdc", ".mrw", ".nef", ".nrw", ".orf", ".ori", ".pef", ".raf",
        ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
    }
)  # fmt: skip


class TiffImage(NamedTuple):
    """One image directory of a TIFF-based file (RAW): its size and any embedded JPEG."""

    width: int | None
    height: int | None
    orientation: int | None
    jpeg_offset: int | None
    jpeg_length: int | None


_TIFF_MAGIC = frozenset({42, 0x4F52, 0x5352, 0x55})  # TIFF, Olympus ORF ('RO', 'RS'), Panasonic RW2
_RAW_PHOTOMETRIC = frozenset({32803, 34892})  # CFA, LinearRaw: JPEG-compressed sensor data


def scan_tiff_images(fh: BinaryIO, max_ifds: int = 64) -> list[TiffImage]:
    """Walk IFD0's chain and SubIFDs of a TIFF-based file (DNG, CR2, NEF, ARW, ...).

    Bounded (max_ifds, 1000 entries per IFD) and loop-safe, since the offsets come from the file.
    """
    fh.seek(0)
    head = fh.read(8)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return []
    order = "<" if head[:2] == b"II" else ">"
    magic, first = struct.unpack(order + "HI", head[2:8])
    if magic not in _TIFF_MAGIC:
        return []
    pending = [first]
    seen: set[int] = set()
    images: list[TiffImage] = []
    while pending and len(seen) < max_ifds:
        offset = pending.pop(0)
        if offset < 8 or offset in seen:
            continue
        seen.add(offset)
        fh.seek(offset)
        raw_count = fh.read(2)
        if len(raw_count) < 2:
            continue
        (count,) = struct.unpack(order + "H", raw_count)
        if count == 0 or count > 1000:
            continue
        body = fh.read(12 * count + 4)
        if len(body) < 12 * count:
            continue
        entries = {}
        for i in range(count):
            tag, kind, n, value = struct.unpack_from(order + "HHI4s", body, 12 * i)
            entries[tag] = (kind, n, value)
        if len(body) >= 12 * count + 4:
            (following,) = struct.unpack_from(order + "I", body, 12 * count)
            if following:
                pending.append(following)

        def scalar(tag: int, entries: dict[int, tuple[int, int, bytes]] = entries) -> int | None:
            entry = entries.get(tag)
            if entry is None or entry[1] != 1:
                return None
            kind, _, value = entry
            if kind == 3:
                return int(struct.unpack(order + "H", value[:2])[0])
            if kind in (4, 13):
                return int(struct.unpack(order + "I", value)[0])
            return None

        sub = entries.get(0x014A)
        if sub is not None and sub[0] in (4, 13):
            kind, n, value = sub
            if n == 1:
                pending.append(struct.unpack(order + "I", value)[0])
            elif 1 < n <= 16:
                fh.seek(struct.unpack(order + "I", value)[0])
                pending.extend(struct.unpack(order + f"{n}I", fh.read(4 * n)))
        jpeg_offset, jpeg_length = scalar(0x0201), scalar(0x0202)
        jpeg_compressed = scalar(0x0103) in (6, 7) and scalar(0x0106) not in _RAW_PHOTOMETRIC
        if jpeg_offset is None and jpeg_compressed:
            jpeg_offset, jpeg_length = scalar(0x0111), scalar(0x0117)
        images.append(
            TiffImage(scalar(0x0100), scalar(0x0101), scalar(0x0112), jpeg_offset, jpeg_length)
        )
    return images
