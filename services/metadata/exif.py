"""Read AssetMetadata from one file: dispatch by type, EXIF tags via Pillow or exifread."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import exifread
import msgspec
from PIL import Image, UnidentifiedImageError
from PIL.ExifTags import IFD

from services.metadata.heif import apply_heif_geometry
from services.metadata.raw import RAW_EXTENSIONS, scan_tiff_images
from services.metadata.reading import (
    CONTENT_ERRORS,
    MAX_DECODED_PIXELS,
    Found,
    UnreadableFile,
    is_io_error,
    open_without_bomb_check,
)
from services.metadata.values import (
    as_float,
    as_int,
    as_text,
    aware,
    exif_date,
    exposure_text,
    gps_coordinate,
    gps_position,
    positive,
    xmp_coordinate,
    zone_name,
)
from services.metadata.video import VIDEO_EXTENSIONS, read_video
from services.metadata.xmp import parse_xmp
from shared import media
from shared.fence import Opened, chunks
from shared.metadata import AssetMetadata

if TYPE_CHECKING:
    from collections.abc import Mapping

# UnreadableFile is re-exported: it is the content half of read_metadata()'s contract below.
__all__ = ["UnreadableFile", "file_sha1", "opened_plainly", "read_metadata"]

# Contract, for the handler that wraps read_metadata():
#
# - Content problems (corrupt, truncated, unsupported, not media at all) raise UnreadableFile
#   and nothing else, but only when *nothing useful* could be read. A file whose header and EXIF
#   parse but whose pixel data is broken still yields metadata: this module never decodes image
#   pixels, so broken pixels cannot affect it (``thumbs.make_thumbnails`` is where they fail).
# - Real I/O failures (the file vanished, permission denied, EIO) propagate as the OSError they are,
#   because the caller treats a vanished file differently from a bad one.
# - Pillow's decompression-bomb check is off here, since nothing is decoded: a 200 MP panorama
#   has its metadata read like any photo. Images Pillow cannot identify are read with exifread
#   alone; RAW files always are, plus a walk of their TIFF directories for the sensor size.
# - HEIF width/height/orientation come from the container (ispe, irot/imir), like the decoder sees
#   them; EXIF Orientation inside a HEIF is ignored, as libheif ignores it.
# - Dates follow Immich's order (which follows exiftool's tag priority): EXIF DateTimeOriginal, EXIF
#   CreateDate (DateTimeDigitized), then the XMP packet (exif:DateTimeOriginal, xmp:CreateDate,
#   photoshop:DateCreated), and only then IFD0 DateTime. IFD0 DateTime is the *modification* time,
#   so it loses to an XMP creation date; on the corpus this order agrees with exiftool in all three
#   files where the two differ. No date at all gives None; the caller falls back to the mtime.

logger = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20


def file_sha1(opened: Opened) -> tuple[str, int]:
    """Hex SHA-1 and size of an open file, streamed in 1 MiB chunks up to the size it had when
    it was opened (a file that keeps growing is not followed)."""
    digest = hashlib.sha1(usedforsecurity=False)
    size = 0
    for chunk in chunks(opened, HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def opened_plainly(path: str) -> Iterator[Opened]:
    """Open a file by name, for callers that read files of their own (tests, benchmarks): a
    user's file is opened through a Fence instead (services.metadata.handlers.extract)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield Opened(fd, path, os.fstat(fd))
    finally:
        os.close(fd)


def read_metadata(path: str, opened: Opened | None = None) -> AssetMetadata:
    """Read checksum, file facts, EXIF/XMP or container metadata from one file.

    Args:
        path: the file's name; its extension picks the reader.
        opened: the file, opened (through a Fence); every reader reads this very file through
            its /proc/self/fd name. Without it, `path` is opened by name.

    Raises:
        UnreadableFile: nothing useful could be read from the content.
        OSError: the file could not be read at all (missing, permission denied, ...).
    """
    if opened is None:
        with opened_plainly(path) as own:
            return read_metadata(path, own)
    modified = datetime.fromtimestamp(opened.st.st_mtime, UTC)
    checksum, size = file_sha1(opened)
    ext = media.extension(path)
    source = opened.proc_path
    if ext in VIDEO_EXTENSIONS:
        found = read_video(source)
    elif ext in RAW_EXTENSIONS:
        found = _read_raw(source)
    else:
        found = _read_image(source)
    readings = msgspec.structs.asdict(found)
    readings["mime_type"] = media.MIME_TYPES.get(ext) or found.mime_type
    return AssetMetadata(**readings, checksum=checksum, file_size=size, file_modified_at=modified)


# --------------------------------------------------------------------------------------- images


class _Tags(NamedTuple):
    """Raw tag values by id, from Pillow or exifread, per IFD."""

    ifd0: Mapping[int, Any]
    exif: Mapping[int, Any]
    gps: Mapping[int, Any]


_NO_TAGS = _Tags({}, {}, {})


def _read_image(path: str) -> Found:
    found = Found()
    tags = _NO_TAGS
    xmp: dict[str, str] = {}
    with open(path, "rb") as fh:
        try:
            image = open_without_bomb_check(fh)  # headers only: no pixel is decoded here
        except CONTENT_ERRORS as exc:
            if is_io_error(exc):
                raise
            # Pillow cannot parse it: exifread may still find EXIF in it, e.g. in a TIFF variant
            # Pillow does not know.
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
                exif = _exif_without_decoding(image)
                tags = _Tags(dict(exif), exif.get_ifd(IFD.Exif), exif.get_ifd(IFD.GPSInfo))
            except CONTENT_ERRORS as exc:
                if is_io_error(exc):
                    raise
                logger.debug("Broken EXIF in %s: %s", path, exc)
            xmp = parse_xmp(image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")) or {}
            heif = image.format == "HEIF"
            heif_original_orientation = image.info.get("original_orientation")
        if heif:
            apply_heif_geometry(found, fh, heif_original_orientation)
    _apply_tags(found, tags, xmp, orientation_from_exif=not heif)
    return found


def _exif_without_decoding(image: Image.Image) -> Image.Exif:
    """image.getexif(), except that it never decodes pixels of an image too big to decode.

    Pillow's PNG plugin loads the whole image to look for an eXIf chunk after the pixel data
    when there was none before it: a 296 KB PNG that claims 50,000 x 50,000 pixels cost a
    worker 2.4 GB that way. Past Pillow's decompression-bomb limit only an eXIf chunk before
    the pixel data counts (where the PNG specification puts it).
    """
    too_big = image.width * image.height > MAX_DECODED_PIXELS
    if too_big and image.format == "PNG" and "exif" not in image.info:
        return Image.Exif()
    return image.getexif()


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


def _read_with_exifread(fh: BinaryIO) -> Found:
    found = Found()
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
        width = as_int(tags.ifd0.get(0x0100)) or as_int(tags.exif.get(0xA002))
        height = as_int(tags.ifd0.get(0x0101)) or as_int(tags.exif.get(0xA003))
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


def _read_raw(path: str) -> Found:
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
    found: Found, tags: _Tags, xmp: Mapping[str, str], *, orientation_from_exif: bool
) -> None:
    ifd0, exif, gps = tags
    if orientation_from_exif:
        orientation = as_int(ifd0.get(0x0112)) or as_int(xmp.get("tiff:Orientation"))
        found.orientation = orientation if orientation in range(1, 9) else None
    found.make = as_text(ifd0.get(0x010F)) or as_text(xmp.get("tiff:Make"))
    found.model = as_text(ifd0.get(0x0110)) or as_text(xmp.get("tiff:Model"))
    found.description = as_text(ifd0.get(0x010E)) or as_text(xmp.get("dc:description"))
    found.lens_model = (
        as_text(exif.get(0xA434))
        or as_text(xmp.get("exifEX:LensModel"))
        or as_text(xmp.get("aux:Lens"))
    )
    found.iso = as_int(exif.get(0x8827))
    found.exposure_time = exposure_text(as_float(exif.get(0x829A)))
    found.f_number = positive(as_float(exif.get(0x829D)))
    found.focal_length = positive(as_float(exif.get(0x920A)))

    when = exif_date(exif, ifd0, xmp)
    if when is not None:
        local, offset = when
        found.local_date_time = local.replace(tzinfo=UTC)
        found.date_time_original = aware(local, offset)
        found.time_zone = zone_name(offset) if offset is not None else None

    position = gps_position(
        gps_coordinate(gps.get(2), gps.get(1)), gps_coordinate(gps.get(4), gps.get(3))
    )
    if position is None:
        position = gps_position(
            xmp_coordinate(xmp.get("exif:GPSLatitude")),
            xmp_coordinate(xmp.get("exif:GPSLongitude")),
        )
    if position is not None:
        found.latitude, found.longitude = position
