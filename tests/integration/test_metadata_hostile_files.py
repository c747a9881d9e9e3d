"""The metadata service against hostile files: a name swapped for a link out of the fence, a
FIFO, /dev/zero, a huge sparse file, a file past the time bound, a library without an external
path. Each is a recorded failure, nothing outside the fence is read, and the next file is read."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text

from services.metadata.app import serve as serve_metadata
from services.metadata.handlers import thumbnail_keys
from shared import events as ev
from shared.ids import external_asset_id
from shared.settings import Settings
from tests.factories import jpeg_bytes, png_bomb
from tests.helpers import (
    SAMPLES,
    assets_of,
    assets_read,
    external_library,
    media_system,
    scan,
)
from tests.system import Infra, System, eventually

pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason=f"corpus not found at {SAMPLES}")


async def _discovered(system: System, lib: str, owner: str, path: Path) -> None:
    """What a scanner publishes for a file it saw moments before the user swapped it."""
    library_id = uuid.UUID(lib)
    await system.ctx.bus.publish(
        ev.FileDiscovered(
            stream_id=external_asset_id(library_id, str(path)),
            library_id=library_id,
            owner_id=uuid.UUID(owner),
            path=str(path),
            type="IMAGE",
            file_modified_at=datetime.now(UTC),
            file_size=path.lstat().st_size,
        )
    )


async def _changed(system: System, asset: dict[str, Any], size: int) -> None:
    """What a scanner publishes for a file it saw change moments before the user swapped it."""
    await system.ctx.bus.publish(
        ev.FileChanged(
            stream_id=uuid.UUID(asset["id"]),
            library_id=uuid.UUID(asset["libraryId"]),
            path=asset["originalPath"],
            file_modified_at=datetime.now(UTC),
            file_size=size,
        )
    )


def _sha1(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


async def test_name_swapped_for_a_symlink_out_of_the_fence_is_never_read(
    metadata_env: Any, tmp_path: Path
) -> None:
    """A scanned photo, then its folder, replaced by a symlink to an outside photo before the
    worker reads it: neither the checksum, the size nor the thumbnail is the outside photo's."""
    system, admin, owner, media = metadata_env
    mine = (SAMPLES / "jpg" / "Canon_40D.jpg").read_bytes()
    theirs = (SAMPLES / "jpg" / "Nikon_D70.jpg").read_bytes()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "photo.jpg").write_bytes(theirs)
    (media / "album").mkdir()
    (media / "album" / "photo.jpg").write_bytes(mine)
    (media / "other.jpg").write_bytes(mine)
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    assets = {Path(a["originalPath"]).name: a for a in await assets_read(system, admin, lib, 2)}
    assert assets["photo.jpg"]["checksum"] == _sha1(mine)
    store = system.ctx.thumbs
    assert store is not None
    thumbs = {
        name: (await store.get(thumbnail_keys(a["id"])[0])).data for name, a in assets.items()
    }

    (media / "other.jpg").rename(media / "other.jpg.moved")
    (media / "other.jpg").symlink_to(secret / "photo.jpg")
    (media / "album").rename(media / "album.moved")
    (media / "album").symlink_to(secret)
    for asset in assets.values():
        await _changed(system, asset, len(mine))
    after: dict[str, Any] = {}

    async def reread() -> bool:
        nonlocal after
        after = {
            Path(a["originalPath"]).name: a
            for a in await assets_of(system, admin, lib, withExif=True)
        }
        return all(
            a["metadataStatus"] == "failed" or a["checksum"] != _sha1(mine) for a in after.values()
        )

    await eventually(reread, 30, "both swapped files to be re-read")
    for name, asset in after.items():
        assert asset["metadataStatus"] == "failed", (name, asset)
        assert "disappeared" in asset["metadataError"], asset["metadataError"]
        size = asset["exifInfo"]["fileSizeInByte"]
        assert (asset["checksum"], size) == (_sha1(mine), len(mine)), name
        assert (await store.get(thumbnail_keys(asset["id"])[0])).data == thumbs[name]


async def test_fifo_dev_zero_and_huge_sparse_file_are_failures_and_the_next_file_is_read(
    metadata_env: Any,
) -> None:
    """Each refused without blocking or reading, recorded with its reason; both workers are
    free for the photo after them."""
    system, admin, owner, media = metadata_env
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    os.mkfifo(media / "pipe.jpg")
    (media / "zero.jpg").symlink_to("/dev/zero")
    huge = media / "huge.jpg"
    shutil.copy(SAMPLES / "jpg" / "Canon_40D.jpg", huge)
    os.truncate(huge, 100 << 30)  # 100 GB, sparse: over the 64 GiB default
    for name in ("pipe.jpg", "zero.jpg", "huge.jpg"):
        await _discovered(system, lib, owner, media / name)
    shutil.copy(SAMPLES / "jpg" / "Nikon_D70.jpg", media / "next.jpg")
    await _discovered(system, lib, owner, media / "next.jpg")
    assets = {Path(a["originalPath"]).name: a for a in await assets_read(system, admin, lib, 4)}
    reasons = {name: a["metadataError"] for name, a in assets.items()}
    assert "not a regular file (a FIFO)" in reasons["pipe.jpg"]
    assert "disappeared" in reasons["zero.jpg"]
    assert "file too large" in reasons["huge.jpg"]
    assert assets["next.jpg"]["metadataStatus"] == "done" and assets["next.jpg"]["resized"]


async def test_file_past_the_time_bound_is_a_failure_and_the_next_file_gets_its_thumbnail(
    infra: Infra, tmp_path: Path
) -> None:
    """One worker, a time bound of 0.1 s, and a 20 KB PNG of 13,000 x 13,000 pixels that takes
    the better part of a second to render: its worker is killed, the file recorded, and a new
    worker renders the photo scanned after it."""

    async def hurried_metadata(settings: Settings, stop: asyncio.Event) -> None:
        await serve_metadata(msgspec.structs.replace(settings, metadata_timeout=0.1), stop, 1)

    async with media_system(infra, tmp_path, hurried_metadata) as m:
        system, admin, media = m.system, m.admin, m.root
        png_bomb(media / "slow.png", 13_000)
        lib = (await external_library(system, admin, m.owner["id"], [str(media)]))["id"]
        await scan(system, admin, lib)
        (slow,) = await assets_read(system, admin, lib, 1)
        assert slow["metadataStatus"] == "failed"
        assert "took longer than 0.1 s; the reader was stopped" in slow["metadataError"]
        (media / "next.jpg").write_bytes(jpeg_bytes((64, 48)))
        await scan(system, admin, lib)
        assets = {Path(a["originalPath"]).name: a for a in await assets_read(system, admin, lib, 2)}
        assert assets["next.jpg"]["metadataStatus"] == "done" and assets["next.jpg"]["resized"]


async def test_file_of_a_library_with_no_external_path_is_a_failure_not_read(
    metadata_env: Any,
) -> None:
    """No library (deleted, or never there), so no external path to fence the read: nothing is
    read, and the failure says why."""
    system, admin, owner, media = metadata_env
    shutil.copy(SAMPLES / "jpg" / "Canon_40D.jpg", media / "photo.jpg")
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    await assets_read(system, admin, lib, 1)
    gone = str(uuid.uuid4())  # a library the read models do not know
    await _discovered(system, gone, owner, media / "photo.jpg")
    asset_id = external_asset_id(uuid.UUID(gone), str(media / "photo.jpg"))
    row: Any = None

    async def recorded() -> bool:
        nonlocal row
        async with system.ctx.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT metadata_status, metadata_error, checksum FROM assets "
                        "WHERE id = :id"
                    ),
                    {"id": asset_id},
                )
            ).first()
        return row is not None and row.metadata_status != "pending"

    await eventually(recorded, 30, "the asset of the unknown library to be recorded")
    assert row.metadata_status == "failed"
    assert "outside the external path" in row.metadata_error
    assert row.checksum is None
