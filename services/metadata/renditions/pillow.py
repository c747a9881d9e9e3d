"""Renditions by Pillow: the formats libvips does not read here (HEIC, JPEG XL, BMP, JPEG
2000, ...), unusual pixel formats, and video frames."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import BinaryIO

from PIL import Image, ImageCms

from services.metadata.reading import CONTENT_ERRORS, is_io_error, open_without_bomb_check
from services.metadata.renditions.sizes import (
    PREVIEW_QUALITY,
    PREVIEW_SIZE,
    THUMBHASH_SIZE,
    THUMBNAIL_QUALITY,
    THUMBNAIL_SIZE,
    Thumbnails,
    fit_inside,
    fit_outside,
    thumbhash_of_rgba,
)
from services.metadata.values import EXIF_TRANSPOSE

__all__ = ["PREVIEW_FILTER", "THUMBNAIL_FILTER", "open_image", "render", "render_opened",
           "thumbhash_of", "wide_gamut_profile"]  # fmt: skip

# JPEGs are decoded at a reduced DCT scale with ``draft()`` (at least 1440 px on the short side),
# the preview is resized from that, and the thumbnail from the preview. Orientation is applied
# after resizing (cheaper, same result) with the EXIF orientation Pillow reports, i.e. the same
# rule as ``ImageOps.exif_transpose``; pillow-heif hands out HEIF pixels already rotated and
# reports orientation 1, so HEIF images are never rotated twice. An image that would decode to
# more than Pillow's decompression-bomb limit (~179 MP) is refused; a JPEG panorama over it is
# fine as long as its draft() scale is under it.
#
# BILINEAR, not LANCZOS, for the preview: after draft() a JPEG is 1-2x the preview size, where
# Pillow's area-aware BILINEAR stays within 43-53 dB PSNR of LANCZOS at ~55% of its cost (BOX is
# cheaper still but visibly softer at ~1.05x: 36 dB). The thumbnail is made from the preview, a
# small image, with Pillow's default BICUBIC.
PREVIEW_FILTER = Image.Resampling.BILINEAR
THUMBNAIL_FILTER = Image.Resampling.BICUBIC
THUMBHASH_FILTER = Image.Resampling.LANCZOS
_BACKGROUND = (255, 255, 255)  # transparent pixels become white


def open_image(fh: BinaryIO) -> Image.Image:
    """Image.open, except that a JPEG over Pillow's decompression-bomb limit (a stitched
    panorama) is opened anyway: draft() decodes it at a reduced scale, and render_opened checks
    that size against the limit before decoding."""
    try:
        return Image.open(fh)
    except Image.DecompressionBombError:
        fh.seek(0)
        if fh.read(3) != b"\xff\xd8\xff":
            raise
        fh.seek(0)
    return open_without_bomb_check(fh)


def render_opened(
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
    return render(normalised, orientation, original, icc)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112)
    except CONTENT_ERRORS as exc:
        if is_io_error(exc):
            raise
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def render(
    image: Image.Image, orientation: int, size: tuple[int, int], icc: bytes | None
) -> Thumbnails:
    """Preview and thumbnail from a decoded RGB/RGBA/L/LA image; icc is its RGB profile, if any."""
    preview = _flatten(_resize(image, fit_outside(image.size, PREVIEW_SIZE), PREVIEW_FILTER))
    if preview.mode != "RGB":
        preview = preview.convert("RGB")
    profile = wide_gamut_profile(icc) if icc is not None else None
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
    return thumbhash_of_rgba(rgba.width, rgba.height, rgba.tobytes())


def _jpeg(image: Image.Image, quality: int, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, icc_profile=icc)  # None: no profile
    return out.getvalue()


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
def wide_gamut_profile(icc: bytes) -> bytes | None:
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
