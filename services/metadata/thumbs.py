"""Thumbnail and preview (both JPEG) of a photo or a video, sized like Immich's.

Photos in the formats libvips reads here (JPEG, PNG, TIFF, WebP, GIF, AVIF) are rendered by
libvips (renditions/vips.py), the rest by Pillow (renditions/pillow.py: HEIC/HEIF through
pillow-heif, JPEG XL through pillow-jxl-plugin, BMP, JPEG 2000, and pixel formats libvips' path
does not settle). RAW files use their biggest embedded JPEG; videos a frame about 1 s in (at most
10% of the duration), decoded by PyAV, scaled by swscale, rotated by the display matrix. Broken
pixel data raises UnreadableFile (``read_metadata`` still returns the header's metadata for such
files), and so does an image that would decode to more than Pillow's decompression-bomb limit
(~179 MP); a JPEG panorama over it is fine as long as its shrink-on-load scale is under it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, BinaryIO

import av
from PIL import Image, UnidentifiedImageError

from services.metadata.heif import truncation
from services.metadata.raw import RAW_EXTENSIONS, scan_tiff_images
from services.metadata.reading import CONTENT_ERRORS, UnreadableFile, is_io_error
from services.metadata.renditions import pillow, vips
from services.metadata.renditions.pillow import PREVIEW_FILTER, THUMBNAIL_FILTER
from services.metadata.renditions.sizes import (
    PREVIEW_SIZE,
    THUMBHASH_SIZE,
    THUMBNAIL_SIZE,
    Thumbnails,
    fit_inside,
    fit_outside,
)
from services.metadata.video import VIDEO_BUFFER, VIDEO_EXTENSIONS, rotation_orientation
from shared import media

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

__all__ = [
    "PREVIEW_FILTER",
    "PREVIEW_SIZE",
    "THUMBHASH_SIZE",
    "THUMBNAIL_FILTER",
    "THUMBNAIL_SIZE",
    "Thumbnails",
    "fit_inside",
    "fit_outside",
    "make_thumbnails",
]

_VIDEO_SEEK_SECONDS = 1.0
_VIDEO_SEEK_FRACTION = 0.1


def make_thumbnails(path: str, source: str | None = None) -> Thumbnails:
    """Decode a photo or a video frame and render the thumbnail and preview.

    Args:
        path: the file's name; its extension picks the decoder.
        source: what to open instead of `path`: the /proc/self/fd name of the file the worker
            opened through a Fence.

    Raises:
        UnreadableFile: the content cannot be decoded.
        OSError: the file could not be read at all (missing, permission denied, ...).
    """
    ext = media.extension(path)
    source = source or path
    try:
        if ext in VIDEO_EXTENSIONS:
            return _video_thumbnails(source)
        return _image_thumbnails(source, raw=ext in RAW_EXTENSIONS)
    except CONTENT_ERRORS as exc:
        if is_io_error(exc):
            raise
        reason = (
            "unrecognised image format"
            if isinstance(exc, UnidentifiedImageError)
            else str(exc) or type(exc).__name__
        )
        raise UnreadableFile(f"cannot decode: {reason}") from None


# ----------------------------------------------------------------------------------- decoding


def _head(fh: BinaryIO) -> bytes:
    """The file's first bytes, after refusing an ISOBMFF file (HEIF, AVIF, MP4, MOV, ...) that
    is cut short; the handle is back at the start."""
    head = fh.read(32)
    if head[4:8] == b"ftyp":
        fh.seek(0)
        reason = truncation(fh)
        if reason is not None:
            raise UnreadableFile(reason)
    fh.seek(0)
    return head


def _image_thumbnails(path: str, *, raw: bool) -> Thumbnails:
    with open(path, "rb") as fh:
        head = _head(fh)
        if raw:
            rendered = _raw_thumbnails(fh)
            if rendered is not None:
                return rendered
            fh.seek(0)
        elif vips.vips_format(head) is not None:
            try:
                rendered = vips.render_file(path)
            except UnreadableFile:
                # libvips stops at damage libjpeg only warns about (a corrupt restart marker);
                # Pillow decodes what it can, and refuses a file cut short just the same.
                rendered = None
            if rendered is not None:
                return rendered
        with pillow.open_image(fh) as image:
            return pillow.render_opened(image)


def _raw_thumbnails(fh: BinaryIO) -> Thumbnails | None:
    """From the biggest embedded JPEG of a TIFF-based RAW (NEF JpgFromRaw, CR2 IFD0, DNG
    preview...), oriented by the RAW's IFD0 orientation. None when there is none we can decode."""
    images = scan_tiff_images(fh)
    if not images:
        return None
    orientation = images[0].orientation or 1  # IFD0's; embedded previews carry none of their own
    if not 1 <= orientation <= 8:
        orientation = 1
    sizes = [(i.width, i.height) for i in images if i.width is not None and i.height is not None]
    upright: tuple[int, int] | None = None
    if sizes:
        width, height = max(sizes, key=lambda wh: wh[0] * wh[1])  # the sensor image
        upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    candidates = sorted(
        (i for i in images if i.jpeg_offset and i.jpeg_length),
        key=lambda i: i.jpeg_length or 0,
        reverse=True,
    )
    for candidate in candidates:
        fh.seek(candidate.jpeg_offset or 0)
        data = fh.read(candidate.jpeg_length or 0)
        if not data.startswith(b"\xff\xd8"):
            continue
        try:
            rendered = vips.render_buffer(data, orientation=orientation, size=upright)
            if rendered is not None:
                return rendered
            with Image.open(io.BytesIO(data)) as embedded:
                return pillow.render_opened(embedded, orientation=orientation, size=upright)
        except UnreadableFile:
            continue
        except CONTENT_ERRORS as exc:
            if is_io_error(exc):
                raise
    return None


def _video_thumbnails(path: str) -> Thumbnails:
    """From a frame ~1 s (at most 10% of the duration) in, scaled by swscale, then rotated."""
    with open(path, "rb") as fh:
        _head(fh)
        return _video_frame_thumbnails(fh)


def _video_frame_thumbnails(fh: BinaryIO) -> Thumbnails:
    with av.open(fh, "r", buffer_size=VIDEO_BUFFER) as container:
        if not container.streams.video:
            raise UnreadableFile("no video stream")
        stream = container.streams.video[0]
        frame = _frame_near(container, stream)
        if frame is None:
            raise UnreadableFile("no decodable video frame")
        width, height = frame.width, frame.height
        target = fit_outside((width, height), PREVIEW_SIZE)
        image: Image.Image = frame.to_image(  # type: ignore[no-untyped-call]
            width=target[0], height=target[1]
        )
        orientation = rotation_orientation(frame.rotation)
    size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return pillow.render(image, orientation, size, None)


def _frame_near(container: InputContainer, stream: VideoStream) -> av.VideoFrame | None:
    duration = container.duration / av.time_base if container.duration else 0.0
    target = min(_VIDEO_SEEK_SECONDS, duration * _VIDEO_SEEK_FRACTION)
    if target > 0:
        try:
            # Lands on the key frame at or before the target; its first frame is good enough.
            container.seek(int(target * av.time_base))
            frame = next(container.decode(stream), None)
            if frame is not None:
                return frame
        except CONTENT_ERRORS as exc:  # unseekable or broken there: try from the start
            if is_io_error(exc):
                raise
        container.seek(0)
    return next(container.decode(stream), None)
