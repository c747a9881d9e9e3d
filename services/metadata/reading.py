"""What every metadata reader shares: UnreadableFile, content-vs-I/O errors, the Found record."""

from __future__ import annotations

import errno
import struct
from typing import BinaryIO

import av
import av.error
import exifread
import exifread.core.exceptions
import pillow_heif
import pillow_jxl  # noqa: F401  (registers the JPEG XL plugin for Image.open)
from PIL import Image

from shared.metadata import Readings

__all__ = [
    "CONTENT_ERRORS",
    "MAX_DECODED_PIXELS",
    "Found",
    "UnreadableFile",
    "is_io_error",
    "open_without_bomb_check",
]

# Once per process, so Image.open() understands HEIC/HEIF (pillow-heif applies irot/imir on decode)
# and JPEG XL (the import above). Here rather than in one reader because every module that opens
# images (exif, thumbs) imports this.
pillow_heif.register_heif_opener()


# Pillow's decompression-bomb warning threshold (~89 MP, about 360 MB as RGBA). Thumbnails are
# decoded up to twice that, where Pillow refuses; reading metadata decodes no pixels of an image
# bigger than this.
MAX_DECODED_PIXELS: int = Image.MAX_IMAGE_PIXELS or 178_956_970

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


def open_without_bomb_check(fh: BinaryIO) -> Image.Image:
    """Image.open without Pillow's decompression-bomb check, which refuses to even open an image
    over ~179 MP. For reading headers, which decodes no pixels, or for a caller that checks the
    size it will decode itself (a JPEG panorama decoded at a reduced scale)."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # a worker process reads one file at a time
    try:
        return Image.open(fh)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


class Found(Readings, kw_only=True):
    """What one reader found; merged into AssetMetadata at the end."""

    def is_useful(self) -> bool:
        return any(
            v is not None
            for v in (self.width, self.date_time_original, self.make, self.model, self.latitude)
        )
