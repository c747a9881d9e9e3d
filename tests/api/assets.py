"""Helpers of the asset API tests: uploads as Immich's clients make them, a stand-in for the
metadata service's record, external photos scanned, statistics."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.metadata.handlers import thumbnail_keys
from shared import events as ev
from shared.metadata import AssetMetadata
from tests.factories import jpeg_bytes, make_tree
from tests.helpers import create_user, external_library, ok, scan
from tests.system import System, run_scanner

BOUNDARY = "shoebox-test-boundary-7f3a"
CREATED = "2024-05-06T07:08:09.000Z"


def photo(seed: int) -> bytes:
    """A small JPEG whose bytes differ for every seed."""
    return jpeg_bytes((16 + seed % 7, 12), (seed % 256, (seed // 256) % 256, 99))


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


async def upload(
    system: System,
    headers: dict[str, str],
    data: bytes,
    name: str = "photo.jpg",
    *,
    created: str = CREATED,
    fields: dict[str, str] | None = None,
    extra_headers: dict[str, str] | None = None,
    sidecar: bytes | None = None,
) -> Any:
    """POST /api/assets as Immich's clients do (multipart, file part `assetData`)."""
    form = {
        "deviceAssetId": f"{name}-{len(data)}",
        "deviceId": "pytest",
        "fileCreatedAt": created,
        "fileModifiedAt": created,
        "isFavorite": "false",
        **(fields or {}),
    }
    files: dict[str, Any] = {"assetData": (name, data, "application/octet-stream")}
    if sidecar is not None:
        files["sidecarData"] = (name + ".xmp", sidecar, "application/xml")
    return await system.client.post(
        "/api/assets", data=form, files=files, headers={**headers, **(extra_headers or {})}
    )


async def uploaded(
    system: System, headers: dict[str, str], data: bytes, name: str = "photo.jpg", **kw: Any
) -> str:
    body = await ok(await upload(system, headers, data, name, **kw), 201)
    assert body["status"] == "created"
    return str(body["id"])


def multipart_head(filename: str, fields: dict[str, str] | None = None) -> bytes:
    """Everything of a multipart body before the file's bytes."""
    parts = []
    for key, value in {
        "fileCreatedAt": CREATED,
        "fileModifiedAt": CREATED,
        **(fields or {}),
    }.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="assetData"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    return "".join(parts).encode()


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MULTIPART_TYPE = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def leftovers(system: System) -> list[str]:
    """Files in the upload location (temp files included)."""
    root = system.settings.upload_path
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def stats(system: System, headers: dict[str, str]) -> dict[str, int]:
    return await ok(await system.client.get("/api/assets/statistics", headers=headers))  # type: ignore[no-any-return]


async def extract(
    system: System,
    asset_id: str,
    *,
    thumbnail: bytes | None = None,
    preview: bytes | None = None,
    **meta: Any,
) -> None:
    """Act as the metadata service: store thumbnails and record MetadataExtracted."""
    store = system.ctx.thumbs
    assert store is not None
    thumb_key = preview_key = None
    if thumbnail is not None and preview is not None:
        thumb_key, preview_key = thumbnail_keys(uuid.UUID(asset_id))
        await store.put(thumb_key, thumbnail)
        await store.put(preview_key, preview)
    metadata = AssetMetadata(
        checksum=meta.pop("checksum", "0" * 40),
        file_size=1,
        file_modified_at=datetime(2024, 1, 1, tzinfo=UTC),
        **meta,
    )
    seq = await system.ctx.bus.publish(
        ev.MetadataExtracted(
            stream_id=uuid.UUID(asset_id),
            metadata=metadata,
            thumbnail_key=thumb_key,
            preview_key=preview_key,
        )
    )
    await system.ctx.settle(seq)


async def external_photos(
    system: System, admin: dict[str, str], media: Path, files: dict[str, bytes | None]
) -> tuple[dict[str, Any], dict[str, str], str, dict[str, Path]]:
    """A user with an external library over `media` holding `files`, scanned.
    Returns (user, user headers, library id, name -> path)."""
    await system.start("scanner", run_scanner)
    user, headers = await create_user(system, admin, "ext@example.com", str(media))
    paths = make_tree(media, files)
    lib = await external_library(system, admin, user["id"], [str(media)])
    await scan(system, admin, lib["id"])
    return user, headers, str(lib["id"]), paths


async def asset_by_path(system: System, headers: dict[str, str], path: Path) -> dict[str, Any]:
    body = await ok(
        await system.client.post(
            "/api/search/metadata", headers=headers, json={"originalPath": str(path)}
        )
    )
    items = body["assets"]["items"]
    assert len(items) == 1, items
    return items[0]  # type: ignore[no-any-return]
