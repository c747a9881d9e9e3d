"""Parse tag values from EXIF, XMP and QuickTime: numbers, text, dates, GPS, orientation."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "EXIF_TRANSPOSE",
    "as_float",
    "as_int",
    "as_text",
    "aware",
    "exif_date",
    "exposure_text",
    "gps_coordinate",
    "gps_position",
    "parse_date",
    "parse_offset",
    "positive",
    "xmp_coordinate",
    "xmp_date",
    "zone_name",
]

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
    text = as_text(value)
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
    text = as_text(value)
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
    text = as_text(value)
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


def aware(local: datetime, offset: timedelta | None) -> datetime:
    """Attach the offset to a wall-clock time; UTC when the offset is unknown."""
    return local.replace(tzinfo=timezone(offset) if offset is not None else UTC)


_XMP_DATE_KEYS = (
    "exif:DateTimeOriginal",
    "xmp:CreateDate",
    "photoshop:DateCreated",
    "exif:DateTimeDigitized",
)


def xmp_date(xmp: Mapping[str, str]) -> _DateOffset | None:
    """The first parseable XMP creation date, in exiftool's priority order."""
    for key in _XMP_DATE_KEYS:
        parsed = parse_date(xmp.get(key))
        if parsed is not None:
            return parsed
    return None


def exif_date(
    exif: Mapping[int, Any], ifd0: Mapping[int, Any], xmp: Mapping[str, str]
) -> _DateOffset | None:
    """Date taken (wall-clock, offset) in Immich/exiftool order; see the contract in exif.py."""
    offset_any = parse_offset(exif.get(0x9010))  # OffsetTime
    chosen: _DateOffset | None = None
    for tag, subsec_tag, offset_tag in ((0x9003, 0x9291, 0x9011), (0x9004, 0x9292, 0x9012)):
        parsed = parse_date(exif.get(tag), exif.get(subsec_tag))
        if parsed is not None:
            chosen = parsed[0], _first(parsed[1], parse_offset(exif.get(offset_tag)), offset_any)
            break
    if chosen is None:
        chosen = xmp_date(xmp)
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


def gps_coordinate(value: object, ref: object) -> float | None:
    """EXIF (deg, min, sec) rationals + N/S/E/W ref -> signed decimal degrees."""
    if value is None:
        return None
    parts = value if isinstance(value, (tuple, list)) else (value,)
    numbers = [as_float(p) for p in parts[:3]]
    if not numbers or any(n is None for n in numbers):
        return None
    degrees = float(sum(n / 60**i for i, n in enumerate(numbers) if n is not None))
    hemisphere = (as_text(ref) or "").upper()[:1]
    return -abs(degrees) if hemisphere in ("S", "W") else degrees


_XMP_COORD_RE = re.compile(
    r"^\s*([+-]?\d+(?:\.\d+)?)(?:\s*,\s*(\d+(?:\.\d+)?))?(?:\s*,\s*(\d+(?:\.\d+)?))?\s*([NSEWnsew])?\s*$"
)


def xmp_coordinate(value: object) -> float | None:
    """XMP GPSCoordinate: '51,30.5N', '51,30,30N', or decimal '51.5083' / '-0.1275'."""
    text = as_text(value)
    if text is None:
        return None
    match = _XMP_COORD_RE.match(text)
    if match is None:
        return None
    degrees = float(match[1])
    magnitude = abs(degrees) + float(match[2] or 0) / 60 + float(match[3] or 0) / 3600
    negative = degrees < 0 or (match[4] or "").upper() in ("S", "W")
    return -magnitude if negative else magnitude


def gps_position(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    """Validated (lat, lon): drops missing halves, NaN, out-of-range and the 0/0 'no fix' value."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if lat == 0 and lon == 0:
        return None
    if abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


# ------------------------------------------------------------------------------- value helpers


def as_float(value: object) -> float | None:
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


def as_int(value: object) -> int | None:
    """An int from a numeric string or anything as_float() accepts (truncated)."""
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    number = as_float(value)
    return int(number) if number is not None else None


def positive(value: float | None) -> float | None:
    """The value when it is above zero, else None."""
    return value if value is not None and value > 0 else None


def as_text(value: object) -> str | None:
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


def exposure_text(seconds: float | None) -> str | None:
    """exiftool's PrintExposureTime, which Immich shows: '1/250' below 0.25 s, else '0.5', '2'."""
    if seconds is None or seconds <= 0:
        return None
    if seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    text = f"{seconds:.1f}"
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------------- orientation

EXIF_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
