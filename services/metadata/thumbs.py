"""Thumbnail and preview (both JPEG) generation for photos and videos, sized like Immich's."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO

import av
import msgspec
import numpy as np
import thash
from PIL import Image, ImageCms, UnidentifiedImageError

from services.metadata.heif import truncation
from services.metadata.raw import RAW_EXTENSIONS, scan_tiff_images
from services.metadata.reading import (
    CONTENT_ERRORS,
    UnreadableFile,
    is_io_error,
    open_without_bomb_check,
)
from services.metadata.values import EXIF_TRANSPOSE
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
    "thumbhash_of",
]

# Sizes follow Immich's media repository (``resize(size, size, {fit: 'outside',
# withoutEnlargement: true})``): the *short* side becomes 250 px for the thumbnail and 1440 px for
# the preview, and nothing is enlarged. So a 4032x3024 photo gives a 333x250 thumbnail and a
# 1920x1440 preview.
#
# Decoding: JPEGs are decoded at a reduced DCT scale with ``draft()`` (at least 1440 px on the
# short side), the preview is resized from that, and the thumbnail from the preview. Orientation
# is applied after resizing (cheaper, same result) with the EXIF orientation Pillow reports, i.e.
# the same rule as ``ImageOps.exif_transpose``; pillow-heif hands out HEIF pixels already rotated
# and reports orientation 1, so HEIF images are never rotated twice. Broken pixel data raises
# UnreadableFile (``read_metadata`` still returns the header's metadata for such files), and so
# does an image that would decode to more than Pillow's decompression-bomb limit (~179 MP); a
# JPEG panorama over it is fine as long as its draft() scale is under it. RAW files use their
# biggest embedded JPEG; videos a frame about 1 s in (at most 10% of the duration), rotated by the
# display matrix.

THUMBNAIL_SIZE = 250
PREVIEW_SIZE = 1440
THUMBNAIL_QUALITY = 80
PREVIEW_QUALITY = 80
# BILINEAR, not LANCZOS, for the preview: after draft() a JPEG is 1-2x the preview size, where
# Pillow's area-aware BILINEAR stays within 43-53 dB PSNR of LANCZOS at ~55% of its cost (BOX is
# cheaper still but visibly softer at ~1.05x: 36 dB). The resize is the dearest step after
# decoding. The thumbnail is made from the preview, a small image, with Pillow's default BICUBIC.
PREVIEW_FILTER = Image.Resampling.BILINEAR
THUMBNAIL_FILTER = Image.Resampling.BICUBIC
# The thumbnail is a JPEG, not Immich's default WebP: a 333x250 corpus thumbnail encodes in
# 0.2 ms as JPEG q80 against 4.1 ms as WebP q80 at libwebp's effort 2 (8.6 ms at its default 4),
# for ~8% more bytes (26.9 vs 24.9 kB). WebP encoding was the biggest single cost of a small photo.
# Immich offers JPEG thumbnails too (``image.thumbnail.format``); see decision 0007.
# Immich's thumbhash (media.repository generateThumbhash): the image resized to fit *inside*
# 100x100 without enlargement (sharp's default Lanczos-3), RGBA, encoded by the thumbhash
# algorithm; the API answers its bytes in base64. Here it is made from the upright thumbnail,
# already decoded in memory, so it costs a ~100x75 resize and ~0.1 ms of numpy DCT.
THUMBHASH_SIZE = 100
THUMBHASH_FILTER = Image.Resampling.LANCZOS
_BACKGROUND = (255, 255, 255)  # transparent pixels become white
_VIDEO_SEEK_SECONDS = 1.0
_VIDEO_SEEK_FRACTION = 0.1


class Thumbnails(msgspec.Struct, frozen=True, kw_only=True):
    """The two renditions Immich serves for an asset, plus the upright size of the original."""

    thumbnail: bytes
    """JPEG quality 80, short side at most 250 px."""
    preview: bytes
    """JPEG quality 80, short side at most 1440 px."""
    width: int
    """Width of the original as displayed (after orientation)."""
    height: int
    thumbhash: bytes
    """Immich's thumbhash of the thumbnail (the algorithm's bytes; base64 in the API)."""


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


def _refuse_truncated(fh: BinaryIO) -> None:
    """UnreadableFile for an ISOBMFF file (HEIF, AVIF, MP4, MOV, ...) that is cut short."""
    if fh.read(12)[4:8] == b"ftyp":
        reason = truncation(fh)
        if reason is not None:
            raise UnreadableFile(reason)
    fh.seek(0)


def _image_thumbnails(path: str, *, raw: bool) -> Thumbnails:
    with open(path, "rb") as fh:
        _refuse_truncated(fh)
        if raw:
            rendered = _raw_thumbnails(fh)
            if rendered is not None:
                return rendered
            fh.seek(0)
        with _open_image(fh) as image:
            return _render_opened(image)


def _open_image(fh: BinaryIO) -> Image.Image:
    """Image.open, except that a JPEG over Pillow's decompression-bomb limit (a stitched
    panorama) is opened anyway: draft() decodes it at a reduced scale, and _render_opened checks
    that size against the limit before decoding."""
    try:
        return Image.open(fh)
    except Image.DecompressionBombError:
        fh.seek(0)
        if fh.read(3) != b"\xff\xd8\xff":
            raise
        fh.seek(0)
    return open_without_bomb_check(fh)


def _render_opened(
    image: Image.Image, *, orientation: int | None = None, size: tuple[int, int] | None = None
) -> Thumbnails:
    """Render while the image is open (closing a Pillow image drops its pixels).

    orientation and size (upright) override what the image itself says, for RAW previews.
    """
    original = size or image.size
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", (PREVIEW_SIZE, PREVIEW_SIZE))
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > 2 * limit:  # Pillow's own bound
        raise Image.DecompressionBombError(
            f"{image.width}x{image.height} pixels to decode, over the limit of {2 * limit}"
        )
    if orientation is None:
        orientation = _orientation(image)
    icc = image.info.get("icc_profile")
    image.load()  # the first frame of an animated GIF/WebP/PNG
    if orientation in (5, 6, 7, 8) and size is None:
        original = (original[1], original[0])
    normalised, icc = _normalise_mode(image, icc if isinstance(icc, bytes) else None)
    return _render(normalised, orientation, original, icc)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112)
    except CONTENT_ERRORS as exc:
        if is_io_error(exc):
            raise
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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
            with Image.open(io.BytesIO(data)) as embedded:
                return _render_opened(embedded, orientation=orientation, size=upright)
        except CONTENT_ERRORS as exc:
            if is_io_error(exc):
                raise
    return None


def _video_thumbnails(path: str) -> Thumbnails:
    """From a frame ~1 s (at most 10% of the duration) in, scaled by swscale, then rotated."""
    with open(path, "rb") as fh:
        _refuse_truncated(fh)
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
    return _render(image, orientation, size, None)


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


# ---------------------------------------------------------------------------------- rendering


def _render(
    image: Image.Image, orientation: int, size: tuple[int, int], icc: bytes | None
) -> Thumbnails:
    """Preview and thumbnail from a decoded RGB/RGBA/L/LA image; icc is its RGB profile, if any."""
    preview = _flatten(_resize(image, fit_outside(image.size, PREVIEW_SIZE), PREVIEW_FILTER))
    if preview.mode != "RGB":
        preview = preview.convert("RGB")
    profile = _wide_gamut_profile(icc) if icc is not None else None
    method = EXIF_TRANSPOSE.get(orientation)
    if method is not None:
        preview = preview.transpose(method)
    thumbnail = _resize(preview, fit_outside(preview.size, THUMBNAIL_SIZE), THUMBNAIL_FILTER)
    return Thumbnails(
        thumbnail=_jpeg(thumbnail, THUMBNAIL_QUALITY, profile),
        preview=_jpeg(preview, PREVIEW_QUALITY, profile),
        width=size[0],
        height=size[1],
        thumbhash=thumbhash_of(thumbnail),
    )


def thumbhash_of(image: Image.Image) -> bytes:
    """Immich's thumbhash of an upright image: fitted inside 100x100, as RGBA."""
    small = _resize(image, fit_inside(image.size, THUMBHASH_SIZE), THUMBHASH_FILTER)
    rgba = small.convert("RGBA")
    pixels = np.frombuffer(rgba.tobytes(), dtype=np.uint8)
    return bytes(thash.rgba_to_thumb_hash(rgba.width, rgba.height, pixels))


def _jpeg(image: Image.Image, quality: int, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, icc_profile=icc)  # None: no profile
    return out.getvalue()


def fit_outside(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """Immich's fit 'outside' without enlargement: scale so the short side is short_side."""
    width, height = size
    scale = short_side / min(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_inside(size: tuple[int, int], box: int) -> tuple[int, int]:
    """Sharp's fit 'inside' without enlargement: scale so the long side is at most box."""
    width, height = size
    scale = box / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    if image.size == size:
        return image
    # reducing_gap=2: box-reduce big ratios first, then filter ~2x the target (Image.thumbnail's
    # trick). Pillow's filters are area-aware, so BILINEAR does not alias on downscales.
    return image.resize(size, resample, reducing_gap=2.0)


def _normalise_mode(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Any Pillow mode -> RGB, RGBA, L or LA (alpha is flattened after resizing), and the ICC
    profile still to apply (a CMYK profile is used up here)."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        out = image
    elif mode == "P":
        out = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        out = image.convert("RGBA")
    elif mode == "1":
        out = image.convert("L")
    elif mode in ("RGBa", "La"):
        out = image.convert("RGBA" if mode == "RGBa" else "LA")
    elif mode.startswith("I;16") or mode in ("I", "F"):
        out = _high_depth_to_l(image)
    elif mode == "CMYK":
        out = _cmyk_to_rgb(image, icc)
        icc = None  # consumed
    else:  # YCbCr, LAB, HSV, RGBX, ...
        out = image.convert("RGB")
    return out, icc


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit grey to 8-bit. I;16 and I holding 16-bit values scale by 1/256 (16-bit PNG/TIFF);
    wider I values and F scale their own maximum to 255 (F in 0..1 is taken as normalised)."""
    as_wide = image if image.mode in ("I", "F") else image.convert("I")
    extrema = as_wide.getextrema()  # (min, max) for a single band
    high = float(extrema[1]) if isinstance(extrema[1], (int, float)) else 0.0
    if image.mode == "F":
        scale = 255.0 if high <= 1.0 else 255.0 / high
        return image.point(lambda v: v * scale).convert("L")
    if high <= 255 and image.mode == "I":
        return as_wide.convert("L")
    divisor = 256 if high <= 65535 else high / 255
    as_i = as_wide
    return as_i.point(lambda v: v / divisor).convert("L")


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if icc is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, _srgb(), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass
    return image.convert("RGB")


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode not in ("RGBA", "LA"):
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, _BACKGROUND)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=32)
def _wide_gamut_profile(icc: bytes) -> bytes | None:
    """The embedded RGB profile to carry into the renditions, or None for sRGB, a non-RGB or a
    broken profile (the pixels are then taken as sRGB, as browsers do with untagged images).

    Wide-gamut photos (Display P3 from phones, Adobe RGB from cameras) keep their profile rather
    than being converted to sRGB: browsers colour-manage tagged JPEGs, the colours stay as wide as
    the original (Immich's default ``image.colorspace`` is P3 for the same reason), and a LittleCMS
    transform of a 2.7 MP preview cost ~32 ms, a tenth of a big HEIC's whole rendering.
    """
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(source) or "").lower()
        if "srgb" in description or source.profile.xcolor_space.strip() != "RGB":
            return None
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, AttributeError):
        return None
    return icc
