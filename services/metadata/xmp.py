"""XMP packets and sidecars: flatten a packet to prefixed properties, apply sidecar overrides."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from datetime import UTC
from typing import Any

import msgspec

from services.metadata.values import (
    as_text,
    aware,
    gps_position,
    xmp_coordinate,
    xmp_date,
    zone_name,
)
from shared.fence import Fence, NotRegular, Opened, chunks
from shared.media import sidecar_candidates
from shared.metadata import AssetMetadata

__all__ = ["XMP_MAX_BYTES", "apply_sidecar", "find_sidecar", "parse_xmp"]

logger = logging.getLogger(__name__)

XMP_MAX_BYTES = 4 << 20


_XMP_NAMESPACES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
}
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _prefixed(qualified: str) -> str | None:
    if not qualified.startswith("{"):
        return None
    uri, _, local = qualified[1:].partition("}")
    prefix = _XMP_NAMESPACES.get(uri) or _XMP_NAMESPACES.get(uri.rstrip("/") + "/")
    return f"{prefix}:{local}" if prefix else None


def parse_xmp(data: bytes | str | None) -> dict[str, str] | None:
    """Flatten an XMP packet to {'xmp:CreateDate': '...', 'dc:description': '...'}.

    Only simple properties and the first (x-default) item of Alt/Seq/Bag arrays are kept. A
    packet with a DOCTYPE or ENTITY declaration is refused (entity-expansion bombs); malformed XML
    gives None.
    """
    if not data:
        return None
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16", errors="replace").encode("utf-8")
    if _DTD_RE.search(data):
        logger.warning("Refusing XMP packet with a DOCTYPE/ENTITY declaration")
        return None
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        start = data.find(b"<x:xapmeta")
    if start >= 0:
        end_tag = b"</x:xmpmeta>" if data[start:].startswith(b"<x:xmpmeta") else b"</x:xapmeta>"
        end = data.find(end_tag, start)
        data = data[start : end + len(end_tag)] if end >= 0 else data[start:]
    else:
        start, end = data.find(b"<rdf:RDF"), data.rfind(b"</rdf:RDF>")
        if start < 0 or end < 0:
            return None
        data = data[start : end + len(b"</rdf:RDF>")]
    try:
        root = ET.fromstring(data.rstrip(b"\x00 \r\n\t"))
    except (ET.ParseError, ValueError):
        return None
    values: dict[str, str] = {}
    for description in root.iter(f"{_RDF}Description"):
        for name, value in description.attrib.items():
            key = _prefixed(name)
            if key and value.strip():
                values.setdefault(key, value.strip())
        for child in description:
            key = _prefixed(child.tag)
            if key is None or key in values:
                continue
            text = _xmp_property_text(child)
            if text:
                values[key] = text
    return values


def _xmp_property_text(element: ET.Element) -> str | None:
    container = next(iter(element), None)
    if container is None:
        return (element.text or "").strip() or None
    if container.tag not in (f"{_RDF}Alt", f"{_RDF}Seq", f"{_RDF}Bag"):
        return None
    items = container.findall(f"{_RDF}li")
    default = next((li for li in items if li.get(_XML_LANG) == "x-default"), None)
    chosen = default if default is not None else (items[0] if items else None)
    return ((chosen.text or "").strip() or None) if chosen is not None else None


# -------------------------------------------------------------------------------------- sidecar


def find_sidecar(fence: Fence, path: str) -> Opened | None:
    """The XMP sidecar of a file, opened through the fence; ``photo.jpg.xmp`` wins over
    ``photo.xmp`` (Immich's rule). Anything but a regular file there counts as no sidecar."""
    for candidate in sidecar_candidates(path):
        try:
            return fence.open_file(candidate)
        except FileNotFoundError:
            continue
        except NotRegular as e:
            logger.warning("Ignoring XMP sidecar %s: %s", candidate, e.strerror)
    return None


def apply_sidecar(meta: AssetMetadata, sidecar: Opened) -> AssetMetadata:
    """Let an XMP sidecar override date taken, GPS and description, as Immich does.

    A sidecar that is malformed, too big or refused (DOCTYPE) overrides nothing; the path is still
    recorded. I/O errors propagate.
    """
    xmp_path = sidecar.real
    too_big = sidecar.st.st_size > XMP_MAX_BYTES
    data = b"" if too_big else b"".join(chunks(sidecar))
    values = None if too_big else parse_xmp(data)
    if values is None:
        logger.warning("Ignoring unreadable XMP sidecar %s", xmp_path)
        return msgspec.structs.replace(meta, sidecar_path=xmp_path)
    changes: dict[str, Any] = {"sidecar_path": xmp_path}
    when = xmp_date(values)
    if when is not None:
        local, offset = when
        changes["date_time_original"] = aware(local, offset)
        changes["local_date_time"] = local.replace(tzinfo=UTC)
        changes["time_zone"] = zone_name(offset) if offset is not None else None
    position = gps_position(
        xmp_coordinate(values.get("exif:GPSLatitude")),
        xmp_coordinate(values.get("exif:GPSLongitude")),
    )
    if position is not None:
        changes["latitude"], changes["longitude"] = position
    description = as_text(values.get("dc:description"))
    if description is not None:
        changes["description"] = description
    return msgspec.structs.replace(meta, **changes)
