"""Read video metadata with PyAV: size, duration, rotation, QuickTime dates, location and camera."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

import av

from services.metadata.reading import CONTENT_ERRORS, Found, UnreadableFile, is_io_error
from services.metadata.values import as_text, aware, gps_position, parse_date, zone_name
from shared import media

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["VIDEO_BUFFER", "VIDEO_EXTENSIONS", "read_video", "rotation_orientation"]

VIDEO_BUFFER = 1 << 20  # PyAV reads a Python file object in chunks of this size

# The scanner only hands over what shared.media imports; containers PyAV reads beyond that are
# decoded as video too rather than failing in Pillow.
VIDEO_EXTENSIONS = media.VIDEO_EXTENSIONS | {".3g2", ".mxf", ".ogv", ".qt"}


_ISO6709_RE = re.compile(r"^\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def read_video(path: str) -> Found:
    """Size, duration, orientation and container tags of a video; UnreadableFile if none."""
    found = Found()
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


def _apply_video_tags(found: Found, tags: Mapping[str, str]) -> None:
    # Apple's creationdate keeps the local offset; creation_time is UTC by the QuickTime spec.
    local, offset = parse_date(tags.get("com.apple.quicktime.creationdate")) or (None, None)
    if local is not None and offset is not None:
        found.local_date_time = local.replace(tzinfo=UTC)
        found.date_time_original = aware(local, offset)
        found.time_zone = zone_name(offset)
    else:
        created = parse_date(tags.get("creation_time"))
        if created is not None:
            utc = aware(created[0], created[1] or timedelta(0)).astimezone(UTC)
            found.date_time_original = utc
            found.local_date_time = utc  # local zone unknown: Immich shows videos in UTC too
    location = tags.get("com.apple.quicktime.location.iso6709") or tags.get("location")
    match = _ISO6709_RE.match(location or "")
    if match is not None:
        position = gps_position(float(match[1]), float(match[2]))
        if position is not None:
            found.latitude, found.longitude = position
    found.make = as_text(tags.get("com.apple.quicktime.make") or tags.get("make"))
    found.model = as_text(tags.get("com.apple.quicktime.model") or tags.get("model"))
    found.description = as_text(tags.get("description"))
