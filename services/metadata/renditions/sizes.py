"""What every renderer shares: the Thumbnails record, Immich's sizes, and the thumbhash."""

from __future__ import annotations

import msgspec
import numpy as np
import thash

__all__ = [
    "PREVIEW_QUALITY",
    "PREVIEW_SIZE",
    "THUMBHASH_SIZE",
    "THUMBNAIL_QUALITY",
    "THUMBNAIL_SIZE",
    "Thumbnails",
    "fit_inside",
    "fit_outside",
    "thumbhash_of_rgba",
]

# Sizes follow Immich's media repository (``resize(size, size, {fit: 'outside',
# withoutEnlargement: true})``): the *short* side becomes 250 px for the thumbnail and 1440 px for
# the preview, and nothing is enlarged. So a 4032x3024 photo gives a 333x250 thumbnail and a
# 1920x1440 preview. Both are JPEG quality 80 (decision 0007: not WebP).
THUMBNAIL_SIZE = 250
PREVIEW_SIZE = 1440
THUMBNAIL_QUALITY = 80
PREVIEW_QUALITY = 80
# Immich's thumbhash (media.repository generateThumbhash): the image resized to fit *inside*
# 100x100 without enlargement (sharp's default Lanczos-3), RGBA, encoded by the thumbhash
# algorithm; the API answers its bytes in base64. Made from the upright thumbnail, already
# decoded in memory, so it costs a ~100x75 resize and ~0.1 ms of numpy DCT.
THUMBHASH_SIZE = 100


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


def thumbhash_of_rgba(width: int, height: int, rgba: bytes) -> bytes:
    """The thumbhash of width x height RGBA pixels (already fitted inside THUMBHASH_SIZE)."""
    pixels = np.frombuffer(rgba, dtype=np.uint8)
    return bytes(thash.rgba_to_thumb_hash(width, height, pixels))
