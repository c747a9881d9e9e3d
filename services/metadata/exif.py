"""Read AssetMetadata from photos and videos: Pillow/pillow-heif, exifread for RAW, PyAV."""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import av
import av.error
import exifread
import exifread.core.exceptions
import msgspec
import pillow_heif
from PIL import Image, UnidentifiedImageError
from PIL.ExifTags import IFD

from shared import media
from shared.media import sidecar_candidates
from shared.metadata import AssetMetadata

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "CONTENT_ERRORS",
    "EXIF_TRANSPOSE",
    "RAW_EXTENSIONS",
    "VIDEO_BUFFER",
    "VIDEO_EXTENSIONS",
    "TiffImage",
    "UnreadableFile",
    "apply_sidecar",
    "file_sha1",
    "find_sidecar",
    "heif_geometry",
    "is_io_error",
    "parse_date",
    "parse_offset",
    "parse_xmp",
    "read_metadata",
    "rotation_orientation",
    "scan_tiff_images",
    "zone_name",
]

# Contract, for the handler that wraps read_metadata():
#
# - Content problems (corrupt, truncated, unsupported, not media at all) raise UnreadableFile
#   and nothing else, but only when *nothing useful* could be read. A file whose header and EXIF
#   parse but whose pixel data is broken still yields metadata: this module never decodes image
#   pixels, so broken pixels cannot affect it (``thumbs.make_thumbnails`` is where they fail).
# - Real I/O failures (the file vanished, permission denied, EIO) propagate as the OSError they are,
#   because the caller treats a vanished file differently from a bad one.
# - Images Pillow refuses as decompression bombs (over ~179 MP) or cannot identify are read with
#   exifread alone; RAW files always are, plus a walk of their TIFF directories for the sensor size.
# - HEIF width/height/orientation come from the container (ispe, irot/imir), like the decoder sees
#   them; EXIF Orientation inside a HEIF is ignored, as libheif ignores it.
# - Dates follow Immich's order (which follows exiftool's tag priority): EXIF DateTimeOriginal, EXIF
#   CreateDate (DateTimeDigitized), then the XMP packet (exif:DateTimeOriginal, xmp:CreateDate,
#   photoshop:DateCreated), and only then IFD0 DateTime. IFD0 DateTime is the *modification* time,
#   so it loses to an XMP creation date; on the corpus this order agrees with exiftool in all three
#   files where the two differ. No date at all gives None; the caller falls back to the mtime.

logger = logging.getLogger(__name__)

# Once per process, so Image.open() understands HEIC/HEIF (pillow-heif applies irot/imir on decode).
pillow_heif.register_heif_opener()

HASH_CHUNK = 1 << 20
XMP_MAX_BYTES = 4 << 20
VIDEO_BUFFER = 1 << 20  # PyAV reads a Python file object in chunks of this size

# The scanner only hands over what shared.media imports; containers PyAV reads beyond that are
# decoded as video too rather than failing in Pillow.
VIDEO_EXTENSIONS = media.VIDEO_EXTENSIONS | {".3g2", ".mxf", ".ogv", ".qt"}
RAW_EXTENSIONS = frozenset(
    {
        ".3fr", ".ari", ".arw", ".cap", ".cin", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf",
        ".fff", ".iiq", ".k25", ".kdc", ".mrw", ".nef", ".nrw", ".orf", ".ori", ".pef", ".raf",
        ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
    }
)  # fmt: skip


# What Pillow, pillow-heif, exifread and PyAV raise for bad *content*. OSError is in the list
# because Pillow reports truncation and unknown formats as plain OSError; is_io_error() picks out
# the OSErrors that are real I/O failures so they can propagate.
CONTENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,  # includes xml.etree.ElementTree.ParseError
    ValueError,  # includes UnicodeDecodeError and av.error.InvalidDataError
    struct.error,
    KeyError,
    IndexError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    EOFError,
    MemoryError,
    RuntimeError,  # pillow-heif's libheif errors; RecursionError on looping IFDs
    Image.DecompressionBombError,
    av.error.FFmpegError,
    exifread.core.exceptions.ExifError,  # InvalidExif, ExifNotFound, HEIC BadSize/BoxVersion
)

_IO_ERRNOS = frozenset(
    {
        errno.ENOENT, errno.EACCES, errno.EPERM, errno.EIO, errno.EISDIR, errno.ENOTDIR,
        errno.ENXIO, errno.ENODEV, errno.ESTALE, errno.ELOOP, errno.ENAMETOOLONG, errno.EMFILE,
        errno.ENFILE,
    }
)  # fmt: skip


class UnreadableFile(Exception):
    """Raised when a file's content cannot be read as a photo or video at all.

    Corrupt, truncated, unsupported or non-media content. Missing files and permission problems
    are *not* wrapped; they propagate as the OSError that describes them.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_io_error(exc: BaseException) -> bool:
    """True for an OSError that reports the file system (gone, forbidden, EIO), not the content.

    PyAV errors never count: FFmpeg reports corrupt input as EIO or EPERM too (a broken Matroska
    gives EIO, an impossible seek EPERM), so callers open the file with Python first and let
    that open() report the file system.
    """
    return (
        isinstance(exc, OSError)
        and exc.errno in _IO_ERRNOS
        and not isinstance(exc, av.error.FFmpegError)
    )


def file_sha1(path: str) -> tuple[str, int]:
    """Hex SHA-1 and size of a file, streamed in 1 MiB chunks."""
    digest = hashlib.sha1(usedforsecurity=False)
    buffer = bytearray(HASH_CHUNK)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


@dataclass(slots=True)
class _Found:
    """What one reader found; merged into AssetMetadata at the end."""

    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    date_time_original: datetime | None = None
    time_zone: str | None = None
    local_date_time: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    iso: int | None = None
    exposure_time: str | None = None
    f_number: float | None = None
    focal_length: float | None = None
    description: str | None = None
    duration_seconds: float | None = None
    mime_type: str | None = None

    def is_useful(self) -> bool:
        return any(
            v is not None
            for v in (self.width, self.date_time_original, self.make, self.model, self.latitude)
        )


def read_metadata(path: str) -> AssetMetadata:
    """Read checksum, file facts, EXIF/XMP or container metadata from one file.

    Raises:
        UnreadableFile: nothing useful could be read from the content.
        OSError: the file could not be read at all (missing, permission denied, ...).
    """
    modified = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    checksum, size = file_sha1(path)
    ext = media.extension(path)
    if ext in VIDEO_EXTENSIONS:
        found = _read_video(path)
    elif ext in RAW_EXTENSIONS:
        found = _read_raw(path)
    else:
        found = _read_image(path)
    return AssetMetadata(
        checksum=checksum,
        file_size=size,
        file_modified_at=modified,
        width=found.width,
        height=found.height,
        orientation=found.orientation,
        date_time_original=found.date_time_original,
        time_zone=found.time_zone,
        local_date_time=found.local_date_time,
        latitude=found.latitude,
        longitude=found.longitude,
        make=found.make,
        model=found.model,
        lens_model=found.lens_model,
        iso=found.iso,
        exposure_time=found.exposure_time,
        f_number=found.f_number,
        focal_length=found.focal_length,
        description=found.description,
        duration_seconds=found.duration_seconds,
        mime_type=media.MIME_TYPES.get(ext) or found.mime_type,
        sidecar_path=None,
    )


# --------------------------------------------------------------------------------------- images


class _Tags(NamedTuple):
    """Raw tag values by id, from Pillow or exifread, per IFD."""

    ifd0: Mapping[int, Any]
    exif: Mapping[int, Any]
    gps: Mapping[int, Any]


_NO_TAGS = _Tags({}, {}, {})


def _read_image(path: str) -> _Found:
    found = _Found()
    tags = _NO_TAGS
    xmp: dict[str, str] = {}
    with open(path, "rb") as fh:
        try:
            image = Image.open(fh)
        except CONTENT_ERRORS as exc:
            if is_io_error(exc):
                raise
            # Pillow cannot parse it (or refuses a decompression bomb): exifread may still find
            # EXIF in it, e.g. in a TIFF variant Pillow does not know.
            logger.debug("Pillow cannot open %s (%s); trying exifread", path, exc)
            found = _read_with_exifread(fh)
            if not found.is_useful():
                reason = (
                    "unrecognised image format"
                    if isinstance(exc, UnidentifiedImageError)
                    else str(exc)
                )
                raise UnreadableFile(f"not a readable image: {reason}") from None
            return found
        with image:
            found.mime_type = Image.MIME.get(image.format or "")
            found.width, found.height = image.size
            try:
                exif = image.getexif()
                tags = _Tags(dict(exif), exif.get_ifd(IFD.Exif), exif.get_ifd(IFD.GPSInfo))
            except CONTENT_ERRORS as exc:
                if is_io_error(exc):
                    raise
                logger.debug("Broken EXIF in %s: %s", path, exc)
            xmp = parse_xmp(image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")) or {}
            heif = image.format == "HEIF"
            heif_original_orientation = image.info.get("original_orientation")
        if heif:
            _apply_heif_geometry(found, fh, heif_original_orientation)
    _apply_tags(found, tags, xmp, orientation_from_exif=not heif)
    return found


# Containers exifread can find EXIF in; anything else is not worth its "format not recognized".
_EXIFREAD_MAGIC = (
    b"II*\x00",
    b"MM\x00*",
    b"\xff\xd8",
    b"\x89PNG",
    b"RIFF",
    b"FUJIFILM",
    b"IIRO",
    b"IIU\x00",
)


def _read_with_exifread(fh: BinaryIO) -> _Found:
    found = _Found()
    fh.seek(0)
    head = fh.read(12)
    fh.seek(0)
    if not (head.startswith(_EXIFREAD_MAGIC) or head[4:8] == b"ftyp"):
        return found
    try:
        raw = exifread.process_file(fh, details=False, extract_thumbnail=False)
    except CONTENT_ERRORS as exc:
        if is_io_error(exc):
            raise
        return found
    tags, xmp_bytes = _exifread_tags(raw)
    _apply_tags(found, tags, parse_xmp(xmp_bytes) or {}, orientation_from_exif=True)
    if found.width is None:
        width = _int(tags.ifd0.get(0x0100)) or _int(tags.exif.get(0xA002))
        height = _int(tags.ifd0.get(0x0101)) or _int(tags.exif.get(0xA003))
        if width and height:
            found.width, found.height = width, height
    return found


def _exifread_tags(raw: Mapping[str, Any]) -> tuple[_Tags, bytes | None]:
    ifd0: dict[int, Any] = {}
    exif: dict[int, Any] = {}
    gps: dict[int, Any] = {}
    groups = {"Image": ifd0, "EXIF": exif, "GPS": gps}
    xmp: bytes | None = None
    for key, tag in raw.items():
        target = groups.get(key.split(" ", 1)[0])
        tag_id = getattr(tag, "tag", None)
        if target is None or not isinstance(tag_id, int):
            continue
        values = tag.values
        if tag_id == 0x02BC and isinstance(values, list):  # XMLPacket, stored as BYTE[]
            try:
                xmp = bytes(values)
            except (TypeError, ValueError):
                xmp = None
            continue
        if isinstance(values, list):
            value: Any = values[0] if len(values) == 1 else tuple(values)
        else:
            value = values
        target.setdefault(tag_id, value)
    return _Tags(ifd0, exif, gps), xmp


def _read_raw(path: str) -> _Found:
    """RAW files: exifread for the tags, our TIFF walk for the sensor size (Pillow would report
    the small IFD0 preview of a NEF or DNG as the image size)."""
    with open(path, "rb") as fh:
        found = _read_with_exifread(fh)
        try:
            images = scan_tiff_images(fh)
        except CONTENT_ERRORS as exc:
            if is_io_error(exc):
                raise
            images = []
    sized = [i for i in images if i.width and i.height]
    if sized:
        biggest = max(sized, key=lambda i: (i.width or 0) * (i.height or 0))
        found.width, found.height = biggest.width, biggest.height
    if not found.is_useful():
        raise UnreadableFile("no EXIF or TIFF structure found in RAW file")
    return found


def _apply_tags(
    found: _Found, tags: _Tags, xmp: Mapping[str, str], *, orientation_from_exif: bool
) -> None:
    ifd0, exif, gps = tags
    if orientation_from_exif:
        orientation = _int(ifd0.get(0x0112)) or _int(xmp.get("tiff:Orientation"))
        found.orientation = orientation if orientation in range(1, 9) else None
    found.make = _text(ifd0.get(0x010F)) or _text(xmp.get("tiff:Make"))
    found.model = _text(ifd0.get(0x0110)) or _text(xmp.get("tiff:Model"))
    found.description = _text(ifd0.get(0x010E)) or _text(xmp.get("dc:description"))
    found.lens_model = (
        _text(exif.get(0xA434)) or _text(xmp.get("exifEX:LensModel")) or _text(xmp.get("aux:Lens"))
    )
    found.iso = _int(exif.get(0x8827))
    found.exposure_time = _exposure_text(_num(exif.get(0x829A)))
    found.f_number = _positive(_num(exif.get(0x829D)))
    found.focal_length = _positive(_num(exif.get(0x920A)))

    when = _exif_date(exif, ifd0, xmp)
    if when is not None:
        local, offset = when
        found.local_date_time = local.replace(tzinfo=UTC)
        found.date_time_original = _aware(local, offset)
        found.time_zone = zone_name(offset) if offset is not None else None

    position = _gps_position(
        _gps_coordinate(gps.get(2), gps.get(1)), _gps_coordinate(gps.get(4), gps.get(3))
    )
    if position is None:
        position = _gps_position(
            _xmp_coordinate(xmp.get("exif:GPSLatitude")),
            _xmp_coordinate(xmp.get("exif:GPSLongitude")),
        )
    if position is not None:
        found.latitude, found.longitude = position


# ---------------------------------------------------------------------------------------- dates

_DATE_RE = re.compile(
    r"^\s*(\d{4})[:\-./](\d{1,2})[:\-./](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{1,2}(?::?\d{2})?)?\s*$"
)
_OFFSET_RE = re.compile(r"^\s*(Z|([+-])(\d{1,2})(?::?(\d{2}))?)\s*$")

_DateOffset = tuple[datetime, timedelta | None]


def parse_offset(value: object) -> timedelta | None:
    """'+02:00', '-0530', 'Z' -> timedelta; None for blanks like '   :  ' or absurd offsets."""
    text = _text(value)
    if text is None:
        return None
    match = _OFFSET_RE.match(text)
    if match is None:
        return None
    if match[1] == "Z":
        return timedelta(0)
    minutes = int(match[3]) * 60 + int(match[4] or 0)
    if minutes > 14 * 60 or int(match[4] or 0) >= 60:
        return None
    return timedelta(minutes=-minutes if match[2] == "-" else minutes)


def parse_date(value: object, subsec: object = None) -> _DateOffset | None:
    """An EXIF ('2008:10:22 16:28:39') or XMP ('2008-10-22T16:28:39+02:00') date.

    Returns the naive wall-clock time and the UTC offset written with it (None when absent).
    Blank or zero dates ('0000:00:00 00:00:00') give None.
    """
    text = _text(value)
    if text is None:
        return None
    match = _DATE_RE.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    digits = fraction or _digits(subsec)
    micro = int((digits + "000000")[:6]) if digits else 0
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            micro,
        )  # fmt: skip
    except ValueError:
        return None
    if local.year < 1800:
        return None
    return local, parse_offset(zone) if zone else None


def _digits(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits or None


def zone_name(offset: timedelta) -> str:
    """exiftool-vendored's name for a fixed offset, as Immich stores it: 'UTC+2', 'UTC-5:30'."""
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _aware(local: datetime, offset: timedelta | None) -> datetime:
    return local.replace(tzinfo=timezone(offset) if offset is not None else UTC)


_XMP_DATE_KEYS = (
    "exif:DateTimeOriginal",
    "xmp:CreateDate",
    "photoshop:DateCreated",
    "exif:DateTimeDigitized",
)


def _xmp_date(xmp: Mapping[str, str]) -> _DateOffset | None:
    for key in _XMP_DATE_KEYS:
        parsed = parse_date(xmp.get(key))
        if parsed is not None:
            return parsed
    return None


def _exif_date(
    exif: Mapping[int, Any], ifd0: Mapping[int, Any], xmp: Mapping[str, str]
) -> _DateOffset | None:
    """Date taken, local wall-clock and offset, in Immich/exiftool order (see module docstring)."""
    offset_any = parse_offset(exif.get(0x9010))  # OffsetTime
    chosen: _DateOffset | None = None
    for tag, subsec_tag, offset_tag in ((0x9003, 0x9291, 0x9011), (0x9004, 0x9292, 0x9012)):
        parsed = parse_date(exif.get(tag), exif.get(subsec_tag))
        if parsed is not None:
            chosen = parsed[0], _first(parsed[1], parse_offset(exif.get(offset_tag)), offset_any)
            break
    if chosen is None:
        chosen = _xmp_date(xmp)
    if chosen is None:
        parsed = parse_date(ifd0.get(0x0132), exif.get(0x9290))
        if parsed is not None:
            chosen = parsed[0], _first(parsed[1], offset_any)
    if chosen is not None and chosen[1] is None:
        # An XMP copy of the same wall-clock time often carries the offset EXIF left out.
        wall = chosen[0].replace(microsecond=0)
        for key in _XMP_DATE_KEYS:
            other = parse_date(xmp.get(key))
            if other and other[1] is not None and other[0].replace(microsecond=0) == wall:
                return chosen[0], other[1]
    return chosen


def _first(*offsets: timedelta | None) -> timedelta | None:
    """The first offset present; timedelta(0) is falsy, so `a or b` would drop an explicit UTC."""
    return next((o for o in offsets if o is not None), None)


# ------------------------------------------------------------------------------------------ GPS


def _gps_coordinate(value: object, ref: object) -> float | None:
    """EXIF (deg, min, sec) rationals + N/S/E/W ref -> signed decimal degrees."""
    if value is None:
        return None
    parts = value if isinstance(value, (tuple, list)) else (value,)
    numbers = [_num(p) for p in parts[:3]]
    if not numbers or any(n is None for n in numbers):
        return None
    degrees = float(sum(n / 60**i for i, n in enumerate(numbers) if n is not None))
    hemisphere = (_text(ref) or "").upper()[:1]
    return -abs(degrees) if hemisphere in ("S", "W") else degrees


_XMP_COORD_RE = re.compile(
    r"^\s*([+-]?\d+(?:\.\d+)?)(?:\s*,\s*(\d+(?:\.\d+)?))?(?:\s*,\s*(\d+(?:\.\d+)?))?\s*([NSEWnsew])?\s*$"
)


def _xmp_coordinate(value: object) -> float | None:
    """XMP GPSCoordinate: '51,30.5N', '51,30,30N', or decimal '51.5083' / '-0.1275'."""
    text = _text(value)
    if text is None:
        return None
    match = _XMP_COORD_RE.match(text)
    if match is None:
        return None
    degrees = float(match[1])
    magnitude = abs(degrees) + float(match[2] or 0) / 60 + float(match[3] or 0) / 3600
    negative = degrees < 0 or (match[4] or "").upper() in ("S", "W")
    return -magnitude if negative else magnitude


def _gps_position(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    """Validated (lat, lon): drops missing halves, NaN, out-of-range and the 0/0 'no fix' value."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if lat == 0 and lon == 0:
        return None
    if abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


# ------------------------------------------------------------------------------- value helpers


def _num(value: object) -> float | None:
    """A finite float from an int, float, IFDRational, exifread Ratio or one-element tuple."""
    if isinstance(value, (tuple, list)):
        if not value:
            return None
        value = value[0]
    if isinstance(value, (bytes, str)) or value is None:
        return None
    denominator = getattr(value, "denominator", 1)
    if denominator == 0:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    number = _num(value)
    return int(number) if number is not None else None


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _text(value: object) -> str | None:
    """Stripped text from str/bytes (NUL-padded, Latin-1 fallback); None when blank."""
    if isinstance(value, bytes):
        raw = value.split(b"\x00", 1)[0]
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.split("\x00", 1)[0].strip()  # C strings: exiftool stops at the first NUL too
    return text or None


def _exposure_text(seconds: float | None) -> str | None:
    """exiftool's PrintExposureTime, which Immich shows: '1/250' below 0.25 s, else '0.5', '2'."""
    if seconds is None or seconds <= 0:
        return None
    if seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    text = f"{seconds:.1f}"
    return text[:-2] if text.endswith(".0") else text


# ----------------------------------------------------------------------------------------- HEIF


def _apply_heif_geometry(found: _Found, fh: BinaryIO, exif_orientation: object) -> None:
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
    orientation = _int(exif_orientation)
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
    fh.seek(0, os.SEEK_END)
    file_end = fh.tell()
    pos = 0
    for _ in range(64):
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", header)
        header_len = 8
        if size == 1 and len(header) == 16:
            (size,) = struct.unpack_from(">Q", header, 8)
            header_len = 16
        elif size == 0:
            size = file_end - pos
        if size < header_len:
            return None
        if kind == wanted.encode():
            if size - header_len > limit:
                return None
            fh.seek(pos + header_len)
            return fh.read(size - header_len)
        pos += size
    return None


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


EXIF_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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


# ----------------------------------------------------------------------------------------- TIFF


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


# ---------------------------------------------------------------------------------------- video


_ISO6709_RE = re.compile(r"^\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def _read_video(path: str) -> _Found:
    found = _Found()
    with open(path, "rb") as fh:  # file-system errors surface here, not as PyAV errors
        try:
            with av.open(fh, "r", metadata_errors="replace", buffer_size=VIDEO_BUFFER) as container:
                tags = {k.lower(): v for k, v in container.metadata.items()}
                if not container.streams.video:
                    raise UnreadableFile("no video stream")
                stream = container.streams.video[0]
                for key, value in stream.metadata.items():
                    tags.setdefault(key.lower(), value)
                if container.duration:
                    found.duration_seconds = container.duration / av.time_base
                elif stream.duration and stream.time_base:
                    found.duration_seconds = float(stream.duration * stream.time_base)
                codec = stream.codec_context
                if codec is not None and codec.width and codec.height:
                    found.width, found.height = codec.width, codec.height
                found.orientation = _video_orientation(container, stream)
        except CONTENT_ERRORS as exc:
            if is_io_error(exc):
                raise
            raise UnreadableFile(f"not a readable video: {exc}") from None
    _apply_video_tags(found, tags)
    if found.width is None and found.duration_seconds is None:
        raise UnreadableFile("video stream has neither size nor duration")
    return found


def _video_orientation(container: Any, stream: Any) -> int:
    """EXIF orientation from the display matrix. PyAV only exposes it on decoded frames, so decode
    the first key frame; a stream that does not decode is still readable metadata-wise."""
    if stream.codec_context is None:
        return 1
    stream.codec_context.skip_frame = "NONKEY"
    try:
        frame = next(container.decode(stream), None)
    except CONTENT_ERRORS as exc:
        if is_io_error(exc):
            raise
        return 1
    return rotation_orientation(frame.rotation) if frame is not None else 1


def rotation_orientation(rotation: float) -> int:
    """Display-matrix rotation (degrees counter-clockwise) -> EXIF orientation."""
    quarter = round(rotation / 90) % 4
    return {0: 1, 1: 8, 2: 3, 3: 6}[quarter]


def _apply_video_tags(found: _Found, tags: Mapping[str, str]) -> None:
    # Apple's creationdate keeps the local offset; creation_time is UTC by the QuickTime spec.
    local, offset = parse_date(tags.get("com.apple.quicktime.creationdate")) or (None, None)
    if local is not None and offset is not None:
        found.local_date_time = local.replace(tzinfo=UTC)
        found.date_time_original = _aware(local, offset)
        found.time_zone = zone_name(offset)
    else:
        created = parse_date(tags.get("creation_time"))
        if created is not None:
            utc = _aware(created[0], created[1] or timedelta(0)).astimezone(UTC)
            found.date_time_original = utc
            found.local_date_time = utc  # local zone unknown: Immich shows videos in UTC too
    location = tags.get("com.apple.quicktime.location.iso6709") or tags.get("location")
    match = _ISO6709_RE.match(location or "")
    if match is not None:
        position = _gps_position(float(match[1]), float(match[2]))
        if position is not None:
            found.latitude, found.longitude = position
    found.make = _text(tags.get("com.apple.quicktime.make") or tags.get("make"))
    found.model = _text(tags.get("com.apple.quicktime.model") or tags.get("model"))
    found.description = _text(tags.get("description"))


# ------------------------------------------------------------------------------------------ XMP

_XMP_NAMESPACES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
}
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _prefixed(qualified: str) -> str | None:
    if not qualified.startswith("{"):
        return None
    uri, _, local = qualified[1:].partition("}")
    prefix = _XMP_NAMESPACES.get(uri) or _XMP_NAMESPACES.get(uri.rstrip("/") + "/")
    return f"{prefix}:{local}" if prefix else None


def parse_xmp(data: bytes | str | None) -> dict[str, str] | None:
    """Flatten an XMP packet to {'xmp:CreateDate': '...', 'dc:description': '...'}.

    Only simple properties and the first (x-default) item of Alt/Seq/Bag arrays are kept. A
    packet with a DOCTYPE or ENTITY declaration is refused (entity-expansion bombs); malformed XML
    gives None.
    """
    if not data:
        return None
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16", errors="replace").encode("utf-8")
    if _DTD_RE.search(data):
        logger.warning("Refusing XMP packet with a DOCTYPE/ENTITY declaration")
        return None
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        start = data.find(b"<x:xapmeta")
    if start >= 0:
        end_tag = b"</x:xmpmeta>" if data[start:].startswith(b"<x:xmpmeta") else b"</x:xapmeta>"
        end = data.find(end_tag, start)
        data = data[start : end + len(end_tag)] if end >= 0 else data[start:]
    else:
        start, end = data.find(b"<rdf:RDF"), data.rfind(b"</rdf:RDF>")
        if start < 0 or end < 0:
            return None
        data = data[start : end + len(b"</rdf:RDF>")]
    try:
        root = ET.fromstring(data.rstrip(b"\x00 \r\n\t"))
    except (ET.ParseError, ValueError):
        return None
    values: dict[str, str] = {}
    for description in root.iter(f"{_RDF}Description"):
        for name, value in description.attrib.items():
            key = _prefixed(name)
            if key and value.strip():
                values.setdefault(key, value.strip())
        for child in description:
            key = _prefixed(child.tag)
            if key is None or key in values:
                continue
            text = _xmp_property_text(child)
            if text:
                values[key] = text
    return values


def _xmp_property_text(element: ET.Element) -> str | None:
    container = next(iter(element), None)
    if container is None:
        return (element.text or "").strip() or None
    if container.tag not in (f"{_RDF}Alt", f"{_RDF}Seq", f"{_RDF}Bag"):
        return None
    items = container.findall(f"{_RDF}li")
    default = next((li for li in items if li.get(_XML_LANG) == "x-default"), None)
    chosen = default if default is not None else (items[0] if items else None)
    return ((chosen.text or "").strip() or None) if chosen is not None else None


# -------------------------------------------------------------------------------------- sidecar


def find_sidecar(path: str) -> str | None:
    """The XMP sidecar of a file; ``photo.jpg.xmp`` wins over ``photo.xmp`` (Immich's rule)."""
    for candidate in sidecar_candidates(path):
        if os.path.isfile(candidate):
            return candidate
    return None


def apply_sidecar(meta: AssetMetadata, xmp_path: str) -> AssetMetadata:
    """Let an XMP sidecar override date taken, GPS and description, as Immich does.

    A sidecar that is malformed, too big or refused (DOCTYPE) overrides nothing; the path is still
    recorded. I/O errors propagate.
    """
    with open(xmp_path, "rb") as fh:
        data = fh.read(XMP_MAX_BYTES + 1)
    values = parse_xmp(data) if len(data) <= XMP_MAX_BYTES else None
    if values is None:
        logger.warning("Ignoring unreadable XMP sidecar %s", xmp_path)
        return msgspec.structs.replace(meta, sidecar_path=xmp_path)
    changes: dict[str, Any] = {"sidecar_path": xmp_path}
    when = _xmp_date(values)
    if when is not None:
        local, offset = when
        changes["date_time_original"] = _aware(local, offset)
        changes["local_date_time"] = local.replace(tzinfo=UTC)
        changes["time_zone"] = zone_name(offset) if offset is not None else None
    position = _gps_position(
        _xmp_coordinate(values.get("exif:GPSLatitude")),
        _xmp_coordinate(values.get("exif:GPSLongitude")),
    )
    if position is not None:
        changes["latitude"], changes["longitude"] = position
    description = _text(values.get("dc:description"))
    if description is not None:
        changes["description"] = description
    return msgspec.structs.replace(meta, **changes)
