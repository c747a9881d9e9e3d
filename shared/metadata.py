"""AssetMetadata: what the metadata service reads from one media file (EXIF, XMP, container)."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["AssetMetadata", "Readings"]


class Readings(msgspec.Struct, kw_only=True):
    """What reading a file can find, every field optional: the one list of an asset's metadata
    fields. Readers fill it in (services/metadata); AssetMetadata adds the file facts."""

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


# msgspec lets a frozen Struct extend a mutable one (readers fill a Readings in place); mypy
# applies the rule of dataclasses, which forbid it.
class AssetMetadata(Readings, frozen=True, kw_only=True):  # type: ignore[misc]
    """Metadata read from one file; every field but the file facts is optional so it can evolve.

    Conventions (mirroring Immich's ExifResponseDto and exiftool):

    - ``width``/``height`` are the stored pixel dimensions (exiftool ImageWidth/ImageHeight,
      HEIF ``ispe``), *before* orientation. ``orientation`` (1-8, EXIF semantics) is the
      transform needed to display them; use :meth:`display_size` for the upright size.
      For HEIF the orientation is the container's ``irot``/``imir`` transform, which is what
      decoders apply (EXIF Orientation in a HEIF is advisory and sometimes wrong).
    - ``date_time_original`` is aware. When the file carries no UTC offset the wall-clock time is
      taken as UTC (Immich on a UTC server does the same) and ``time_zone`` stays None.
    - ``local_date_time`` is the capture wall-clock time tagged as UTC, like Immich's
      ``localDateTime`` ("serialised as if UTC").
    - ``time_zone`` uses exiftool-vendored's names, as Immich stores them: ``"UTC+2"``,
      ``"UTC-5:30"``, ``"UTC"``.
    - ``exposure_time`` is exiftool's print form, as Immich shows it: ``"1/250"``, ``"0.5"``.
    """

    checksum: str
    """Hex SHA-1 of the file content."""
    file_size: int
    file_modified_at: datetime
    """File mtime, UTC."""
    sidecar_path: str | None = None

    def display_size(self) -> tuple[int, int] | None:
        """(width, height) as displayed: swapped when the orientation turns the image by 90°."""
        if self.width is None or self.height is None:
            return None
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height
