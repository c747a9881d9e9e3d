"""Renditions by libvips (pyvips, the library from pyvips-binary): JPEG, PNG, TIFF, WebP, GIF, AVIF.

The file is read by the name the worker gives, its /proc/self/fd name of the file it opened
through the fence, as every other reader does. One decode per file: a JPEG shrinks on load by
the biggest of 1/2, 1/4, 1/8 that keeps its short side at least 1440 px (sharp's rule, Pillow's
draft()), a linear resize makes the preview, colour and alpha are settled, the EXIF orientation
is applied to the small image, and the thumbnail is resized from the preview in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pyvips

from services.metadata.reading import MAX_DECODED_PIXELS, UnreadableFile
from services.metadata.renditions import sizes
from services.metadata.renditions.pillow import wide_gamut_profile
from services.metadata.renditions.sizes import PREVIEW_SIZE, Thumbnails, fit_outside

if TYPE_CHECKING:
    from collections.abc import Callable

    _Loader = Callable[..., pyvips.Image]

__all__ = ["VIPS_FORMATS", "render_buffer", "render_file", "vips_format"]

# One thread per worker process, like the sharp floor (sharp.concurrency(1)): the pool runs a
# process per core, and libvips' own threads would only fight them.
pyvips.concurrency_set(1)
# No operation cache: a worker renders each file once, and /proc/self/fd names are reused.
pyvips.cache_set_max(0)
# Loaders libvips marks untrusted (ImageMagick, MATLAB, FITS, ...) are never reached.
pyvips.block_untrusted_set(True)

# The formats handed to libvips, by their first bytes; everything else goes to Pillow, and so
# do HEIC/HEIF (the libheif of pyvips-binary decodes AV1 only, not HEVC) and SVG (never rendered).
VIPS_FORMATS: Final = ("jpeg", "png", "tiff", "webp", "gif", "avif")
_AVIF_BRANDS: Final = (b"avif", b"avis")
# Pixel formats and colour spaces the pipeline below settles; others (float or 32-bit TIFFs,
# Lab, multiband) go to Pillow's mode handling.
_FORMATS: Final = frozenset({"uchar", "ushort"})
_SPACES: Final = frozenset({"srgb", "rgb", "b-w", "rgb16", "grey16", "cmyk"})
# The same bound as Pillow's decompression-bomb error: 2 x MAX_IMAGE_PIXELS decoded pixels.
PIXEL_LIMIT: Final = 2 * MAX_DECODED_PIXELS


def vips_format(head: bytes) -> str | None:
    """Which of VIPS_FORMATS a file's first 32 bytes say it is, None for any other."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS:
        return "avif"
    return None


def render_file(path: str) -> Thumbnails | None:
    """Render the file `path` names (the worker's /proc/self/fd name of the file it opened
    through the fence); None when its pixels are of a kind left to Pillow.

    Raises:
        UnreadableFile: libvips cannot decode it (truncated, corrupt, a decompression bomb).
    """
    source = pyvips.Source.new_from_file(path)  # its own offset: Pillow may read the file after
    return _render(lambda **options: pyvips.Image.new_from_source(source, "", **options))


def render_buffer(
    data: bytes, *, orientation: int, size: tuple[int, int] | None
) -> Thumbnails | None:
    """Render an image held in memory (a RAW file's embedded JPEG), oriented by `orientation`
    and reporting `size` as the original's upright size (the RAW's, not the preview's)."""
    return _render(
        lambda **options: pyvips.Image.new_from_buffer(data, "", **options),
        orientation=orientation,
        size=size,
    )


def _render(
    load: _Loader, *, orientation: int | None = None, size: tuple[int, int] | None = None
) -> Thumbnails | None:
    try:
        return _rendered(load, orientation, size)
    except pyvips.Error as e:
        raise UnreadableFile(f"cannot decode: {_reason(e)}") from None


def _rendered(
    load: _Loader, orientation: int | None, size: tuple[int, int] | None
) -> Thumbnails | None:
    options: dict[str, object] = {"access": "sequential", "fail_on": "truncated"}
    header = load(**options)  # reads the header only; pixels are decoded when first asked for
    loader = str(header.get("vips-loader"))
    if header.format not in _FORMATS or header.interpretation not in _SPACES:
        return None
    width, height = header.width, header.height
    if orientation is None:
        orientation = _orientation(header, loader)
    upright = size or ((height, width) if orientation in (5, 6, 7, 8) else (width, height))
    shrink = _jpeg_shrink(width, height) if loader.startswith("jpegload") else 1
    decoded = (width // shrink) * (height // shrink)
    if decoded > PIXEL_LIMIT:
        raise UnreadableFile(
            f"cannot decode: {width}x{height} pixels to decode, over the limit of {PIXEL_LIMIT}: "
            "could be a decompression bomb"
        )
    image = load(**options, shrink=shrink) if shrink > 1 else header
    icc = _profile(image)
    if image.interpretation == "cmyk" and icc is None:
        return None  # Pillow's plain conversion, as before, rather than a guessed press profile
    target = fit_outside((image.width, image.height), PREVIEW_SIZE)
    if target != (image.width, image.height):
        image = image.resize(
            target[0] / image.width, vscale=target[1] / image.height, kernel="linear"
        )
    image, icc = _to_srgb_bands(image, icc)
    # Decoded once, in order (the file is read sequentially); the rotation and the thumbnail
    # work on these pixels in memory.
    preview = image.copy_memory()
    if orientation != 1:
        preview.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        preview = preview.autorot().copy_memory()
    keep = "icc" if icc is not None else "none"
    if icc is not None and preview.get_typeof("icc-profile-data") == 0:
        preview.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    small = fit_outside((preview.width, preview.height), sizes.THUMBNAIL_SIZE)
    thumbnail = preview
    if small != (preview.width, preview.height):
        thumbnail = preview.resize(
            small[0] / preview.width, vscale=small[1] / preview.height, kernel="linear"
        ).copy_memory()
    return Thumbnails(
        thumbnail=thumbnail.jpegsave_buffer(Q=sizes.THUMBNAIL_QUALITY, keep=keep),
        preview=preview.jpegsave_buffer(Q=sizes.PREVIEW_QUALITY, keep=keep),
        width=upright[0],
        height=upright[1],
        thumbhash=_thumbhash(thumbnail),
    )


def _jpeg_shrink(width: int, height: int) -> int:
    """The biggest JPEG shrink-on-load factor that keeps the short side >= PREVIEW_SIZE."""
    short = min(width, height)
    for factor in (8, 4, 2):
        if short // factor >= PREVIEW_SIZE:
            return factor
    return 1


def _orientation(image: pyvips.Image, loader: str) -> int:
    """The EXIF orientation libvips read (1 when absent or out of range); AVIF pixels come out
    of libheif already transformed (irot/imir), so they are never rotated again."""
    if loader.startswith("heifload") or image.get_typeof("orientation") == 0:
        return 1
    value = int(image.get("orientation"))
    return value if 1 <= value <= 8 else 1


def _profile(image: pyvips.Image) -> bytes | None:
    if image.get_typeof("icc-profile-data") == 0:
        return None
    data = image.get("icc-profile-data")
    return bytes(data) if data else None


def _to_srgb_bands(image: pyvips.Image, icc: bytes | None) -> tuple[pyvips.Image, bytes | None]:
    """8-bit RGB without alpha (transparent pixels white), and the RGB profile to embed, if it
    is kept (decision 0007: a wide-gamut profile is carried, sRGB is not, CMYK is converted)."""
    if image.interpretation == "cmyk":
        # The embedded CMYK profile, else libvips' own (a CMYK JPEG needs one to mean anything).
        image = image.icc_transform("srgb", embedded=True, input_profile="cmyk")
        icc = None
    elif image.interpretation in ("rgb16", "grey16", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands > 3:
        image = image.extract_band(0, n=3)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image, wide_gamut_profile(icc) if icc is not None else None


def _thumbhash(thumbnail: pyvips.Image) -> bytes:
    """Immich's thumbhash: the upright thumbnail fitted inside 100x100 (Lanczos-3), RGBA."""
    width, height = sizes.fit_inside((thumbnail.width, thumbnail.height), sizes.THUMBHASH_SIZE)
    small = thumbnail
    if (width, height) != (thumbnail.width, thumbnail.height):
        small = thumbnail.resize(
            width / thumbnail.width, vscale=height / thumbnail.height, kernel="lanczos3"
        )
    rgba = small.bandjoin(255)
    return sizes.thumbhash_of_rgba(rgba.width, rgba.height, rgba.write_to_memory())


def _reason(error: pyvips.Error) -> str:
    """libvips' own words: its last detail line ("VipsJpeg: Premature end of JPEG file")."""
    lines = [line.strip() for line in str(error.detail or error.message).splitlines()]
    return next((line for line in reversed(lines) if line), "libvips error")
