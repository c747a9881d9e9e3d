"""Immich's supported media types (server/src/utils/mime-types.ts) and which files a scan takes."""

from __future__ import annotations

import os
from typing import Final, Literal

AssetType = Literal["IMAGE", "VIDEO"]

# Extension -> the first MIME type Immich lists for it (what its `lookup` returns).
_IMAGE_MIME: Final[dict[str, str]] = {
    # raw formats
    ".3fr": "image/3fr",
    ".ari": "image/ari",
    ".arw": "image/arw",
    ".cap": "image/cap",
    ".cin": "image/cin",
    ".cr2": "image/cr2",
    ".cr3": "image/cr3",
    ".crw": "image/crw",
    ".dcr": "image/dcr",
    ".dng": "image/dng",
    ".erf": "image/erf",
    ".fff": "image/fff",
    ".iiq": "image/iiq",
    ".k25": "image/k25",
    ".kdc": "image/kdc",
    ".mrw": "image/mrw",
    ".nef": "image/nef",
    ".nrw": "image/nrw",
    ".orf": "image/orf",
    ".ori": "image/ori",
    ".pef": "image/pef",
    ".psd": "image/psd",
    ".raf": "image/raf",
    ".raw": "image/raw",
    ".rw2": "image/rw2",
    ".rwl": "image/rwl",
    ".sr2": "image/sr2",
    ".srf": "image/srf",
    ".srw": "image/srw",
    ".x3f": "image/x3f",
    # everything else
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".hif": "image/hif",
    ".insp": "image/jpeg",
    ".jp2": "image/jp2",
    ".jpe": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".jxl": "image/jxl",
    ".png": "image/png",
    ".svg": "image/svg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
}

_VIDEO_MIME: Final[dict[str, str]] = {
    ".3gp": "video/3gpp",
    ".3gpp": "video/3gpp",
    ".avi": "video/avi",
    ".flv": "video/x-flv",
    ".insv": "video/mp4",
    ".m2t": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".m4v": "video/x-m4v",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
    ".mp4": "video/mp4",
    ".mpe": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".mpg": "video/mpeg",
    ".mts": "video/mp2t",
    ".vob": "video/mpeg",
    ".webm": "video/webm",
    ".wmv": "video/x-ms-wmv",
}

_SIDECAR_MIME: Final[dict[str, str]] = {".xmp": "application/xml"}

IMAGE_EXTENSIONS: Final = frozenset(_IMAGE_MIME)
VIDEO_EXTENSIONS: Final = frozenset(_VIDEO_MIME)
SIDECAR_EXTENSIONS: Final = frozenset(_SIDECAR_MIME)
MIME_TYPES: Final[dict[str, str]] = {**_IMAGE_MIME, **_VIDEO_MIME, **_SIDECAR_MIME}

DEFAULT_MIME_TYPE: Final = "application/octet-stream"


def extension(path: str) -> str:
    """The lowercase extension with its dot, as node's `path.extname` finds it.

    Unlike `os.path.splitext`, a name's leading dots are skipped only when nothing else comes
    before the last dot: `.jpg` has none, `..jpg` has `.jpg`.
    """
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot <= 0 or name == "..":
        return ""
    return name[dot:].lower()


def asset_type(path: str) -> AssetType | None:
    """IMAGE or VIDEO by extension (any case), None for anything a library does not import."""
    ext = extension(path)
    if ext in IMAGE_EXTENSIONS:
        return "IMAGE"
    if ext in VIDEO_EXTENSIONS:
        return "VIDEO"
    return None


def mime_type(path: str) -> str:
    """Immich's `mimeTypes.lookup`: the MIME type for the extension, else octet-stream."""
    return MIME_TYPES.get(extension(path), DEFAULT_MIME_TYPE)


def is_hidden(name: str) -> bool:
    """True for a dot file or dot directory name, which Immich's crawl skips."""
    return name.startswith(".")


def is_eligible(path: str, import_path: str | None = None) -> bool:
    """True when a scan should import `path`: a supported image or video, not hidden.

    Hidden means a dot-named component below `import_path` (the import path itself may sit in
    a dot directory), or a dot-named file when no import path is given. A `path` that is not
    below `import_path` (compared component-wise, without touching the disk) is not eligible.
    """
    if asset_type(path) is None:
        return False
    if import_path is None:
        return not is_hidden(os.path.basename(path))
    base = import_path.rstrip("/") + "/"
    if not path.startswith(base):
        return False
    return not any(is_hidden(part) for part in path[len(base) :].split("/") if part)


def media_types_response() -> dict[str, list[str]]:
    """Body of `GET /api/server/media-types`: supported extensions per kind, sorted."""
    return {
        "image": sorted(IMAGE_EXTENSIONS),
        "video": sorted(VIDEO_EXTENSIONS),
        "sidecar": sorted(SIDECAR_EXTENSIONS),
    }


def sidecar_candidates(path: str) -> tuple[str, ...]:
    """Where a file's XMP sidecar may be, best first: `photo.jpg.xmp` before `photo.xmp`
    (Immich's rule), each in lower and upper case."""
    stem = os.path.splitext(path)[0]
    return (f"{path}.xmp", f"{path}.XMP", f"{stem}.xmp", f"{stem}.XMP")
