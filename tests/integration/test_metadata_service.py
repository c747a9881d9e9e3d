"""The metadata service end to end: scan real camera files, read EXIF, store thumbnails."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import thash
from PIL import Image
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
    ok,
    scan,
)
from tests.system import Infra, System, eventually

pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason=f"corpus not found at {SAMPLES}")


@pytest.fixture
async def env(
    infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[System, dict[str, str], str, Path]]:
    async with media_system(infra, tmp_path) as m:
        yield m.system, m.admin, m.owner["id"], m.root


async def test_camera_files_get_exif_and_thumbnails(env: Any) -> None:
    system, admin, owner, media = env
    for name in ("Canon_40D.jpg", "Nikon_D70.jpg", "corrupted.jpg"):
        shutil.copy(SAMPLES / "jpg" / name, media / name)
    shutil.copy(SAMPLES / "heic" / "IMG_5195.HEIC", media / "IMG_5195.HEIC")
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    assets = {
        Path(a["originalPath"]).name: a
        for a in await assets_read(system, admin, lib, 4, withExif=True)
    }

    canon = assets["Canon_40D.jpg"]
    assert canon["metadataStatus"] == "done"
    assert canon["exifInfo"]["make"] == "Canon" and canon["exifInfo"]["model"] == "Canon EOS 40D"
    assert canon["exifInfo"]["dateTimeOriginal"].startswith("2008-05-30T15:56:01")
    assert canon["localDateTime"].startswith("2008-05-30T15:56:01")
    heic = assets["IMG_5195.HEIC"]
    assert heic["exifInfo"]["latitude"] == pytest.approx(39.0513, abs=1e-3)

    broken = assets["corrupted.jpg"]
    assert broken["metadataStatus"] in ("failed", "done")
    if broken["metadataStatus"] == "failed":
        assert broken["metadataError"]

    thumb_key, preview_key = thumbnail_keys(canon["id"])
    store = system.ctx.thumbs
    assert store is not None
    thumb = Image.open(io.BytesIO((await store.get(thumb_key)).data or b""))
    assert max(thumb.size) <= 250 or min(thumb.size) <= 250
    preview = Image.open(io.BytesIO((await store.get(preview_key)).data or b""))
    assert preview.format == "JPEG" and max(preview.size) <= 1440


async def test_unreadable_file_is_a_recorded_failure_and_nothing_stops(env: Any) -> None:
    system, admin, owner, media = env
    (media / "garbage.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    (media / "empty.png").write_bytes(b"")
    shutil.copy(SAMPLES / "jpg" / "Canon_40D.jpg", media / "good.jpg")
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    assets = {
        Path(a["originalPath"]).name: a
        for a in await assets_read(system, admin, lib, 3, withExif=True)
    }
    assert assets["garbage.jpg"]["metadataStatus"] == "failed"
    assert assets["garbage.jpg"]["metadataError"]
    assert assets["empty.png"]["metadataStatus"] == "failed"
    assert assets["good.jpg"]["metadataStatus"] == "done"
    detail = await ok(
        await system.client.get(f"/api/assets/{assets['garbage.jpg']['id']}", headers=admin)
    )
    assert detail["isOffline"] is False and detail["metadataError"]


async def test_truncated_file_keeps_its_header_and_records_why_it_has_no_thumbnail(
    env: Any,
) -> None:
    """Header and EXIF intact, pixel data cut off (a copy that stopped half way): the asset is
    listed with what was read, and the failure shows through the API."""
    system, admin, owner, media = env
    jpeg = (SAMPLES / "jpg" / "hdr" / "iphone_hdr_YES.jpg").read_bytes()
    (media / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    heic = (SAMPLES / "heic" / "IMG_5195.HEIC").read_bytes()
    (media / "cut.heic").write_bytes(heic[: len(heic) // 8])
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    assets = {
        Path(a["originalPath"]).name: a
        for a in await assets_read(system, admin, lib, 2, withExif=True)
    }
    for name in ("cut.jpg", "cut.heic"):
        asset = assets[name]
        assert asset["metadataStatus"] == "failed", asset
        assert "no thumbnail" in asset["metadataError"], asset["metadataError"]
        assert asset["isOffline"] is False and asset["resized"] is False
        r = await system.client.get(f"/api/assets/{asset['id']}/thumbnail", headers=admin)
        assert r.status_code == 404
    cut = assets["cut.jpg"]["exifInfo"]
    assert (cut["make"], cut["model"]) == ("Apple", "iPhone 6")
    assert (cut["exifImageWidth"], cut["exifImageHeight"]) == (3264, 2448)
    assert assets["cut.jpg"]["checksum"]  # the hash of what is on disk, for duplicates


async def test_file_met_mid_copy_is_read_once_complete_not_recorded_broken(
    infra: Infra, tmp_path: Path
) -> None:
    """A scan during a copy meets a half-written photo; within the settle time the metadata
    service waits for it instead of recording a failure (a *new* scan would never re-read it)."""

    async def settling_metadata(settings: Settings, stop: asyncio.Event) -> None:
        await serve_metadata(msgspec.structs.replace(settings, metadata_settle=8.0), stop, 1)

    async with media_system(infra, tmp_path, settling_metadata) as m:
        system, admin, media = m.system, m.admin, m.root
        photo = (SAMPLES / "jpg" / "hdr" / "iphone_hdr_YES.jpg").read_bytes()
        target = media / "IMG_0001.jpg"
        target.write_bytes(photo[: len(photo) // 2])  # the copy is half way
        lib = (await external_library(system, admin, m.owner["id"], [str(media)]))["id"]
        await scan(system, admin, lib)
        with target.open("ab") as fh:  # ... and finishes after the scan
            fh.write(photo[len(photo) // 2 :])
        seen: set[str] = set()

        async def read() -> bool:
            (asset,) = await assets_of(system, admin, lib)
            seen.add(asset["metadataStatus"])
            return asset["metadataStatus"] != "pending"

        await eventually(read, 30, "the photo to be read")
        assert seen == {"pending", "done"}, seen
        (asset,) = await assets_of(system, admin, lib, withExif=True)
        assert asset["exifInfo"]["model"] == "iPhone 6" and asset["resized"] is True
        assert asset["checksum"] == base64.b64encode(hashlib.sha1(photo).digest()).decode()


async def test_changed_file_is_reread_on_modified_scan(env: Any) -> None:
    import os

    system, admin, owner, media = env
    target = media / "photo.jpg"
    shutil.copy(SAMPLES / "jpg" / "Canon_40D.jpg", target)
    os.utime(target, (1_600_000_000, 1_600_000_000))
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    (first,) = await assets_read(system, admin, lib, 1, withExif=True)
    assert first["exifInfo"]["make"] == "Canon"
    shutil.copy(SAMPLES / "jpg" / "Nikon_D70.jpg", target)
    os.utime(target, (1_700_000_000, 1_700_000_000))
    await scan(system, admin, lib, {"refreshModifiedFiles": True})

    async def reread() -> bool:
        (a,) = await assets_of(system, admin, lib, withExif=True)
        return a["exifInfo"]["make"] == "NIKON CORPORATION"

    await eventually(reread, 30, "the changed file to be re-read")
    (second,) = await assets_of(system, admin, lib, withExif=True)
    # The checksum is the new content's, not the first reading's (duplicates, move detection).
    assert (
        second["checksum"] == base64.b64encode(hashlib.sha1(target.read_bytes()).digest()).decode()
    )
    assert second["checksum"] != first["checksum"]


def _xmp(description: str, date: str) -> bytes:
    return f"""<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:exif="http://ns.adobe.com/exif/1.0/">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt>
</dc:description>
<exif:DateTimeOriginal>{date}</exif:DateTimeOriginal>
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>""".encode()


async def test_sidecar_appearing_changing_and_going_is_picked_up_by_modified_scan(env: Any) -> None:
    import os

    system, admin, owner, media = env
    photo = media / "photo.jpg"
    shutil.copy(SAMPLES / "jpg" / "Canon_40D.jpg", photo)
    os.utime(photo, (1_600_000_000, 1_600_000_000))
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    (first,) = await assets_read(system, admin, lib, 1, withExif=True)
    assert first["exifInfo"]["dateTimeOriginal"].startswith("2008-05-30")

    async def shows(description: str | None, date_prefix: str) -> None:
        async def check() -> bool:
            (a,) = await assets_of(system, admin, lib, withExif=True)
            return a["exifInfo"]["description"] == description and a["exifInfo"][
                "dateTimeOriginal"
            ].startswith(date_prefix)

        await eventually(check, 30, f"description {description!r}, date {date_prefix}")

    sidecar = media / "photo.jpg.xmp"
    sidecar.write_bytes(_xmp("Harbour at dawn", "2001-02-03T04:05:06"))
    os.utime(sidecar, (1_600_000_100, 1_600_000_100))
    await scan(system, admin, lib, {"refreshModifiedFiles": True})
    await shows("Harbour at dawn", "2001-02-03")
    sidecar.write_bytes(_xmp("Harbour at noon", "2001-02-03T12:00:00"))
    os.utime(sidecar, (1_600_000_200, 1_600_000_200))
    await scan(system, admin, lib, {"refreshModifiedFiles": True})
    await shows("Harbour at noon", "2001-02-03T12")
    sidecar.unlink()
    await scan(system, admin, lib, {"refreshModifiedFiles": True})
    await shows(None, "2008-05-30")
    # The sidecar is never an asset.
    assert len(await assets_of(system, admin, lib)) == 1


# ------------------------------------------------------------------- hostile files (issue #2)


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
    env: Any, tmp_path: Path
) -> None:
    """A scanned photo, then its folder, replaced by a symlink to an outside photo before the
    worker reads it: neither the checksum, the size nor the thumbnail is the outside photo's."""
    system, admin, owner, media = env
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
    env: Any,
) -> None:
    """Each refused without blocking or reading, recorded with its reason; both workers are
    free for the photo after them."""
    system, admin, owner, media = env
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


async def test_file_of_a_library_with_no_external_path_is_a_failure_not_read(env: Any) -> None:
    """No library (deleted, or never there), so no external path to fence the read: nothing is
    read, and the failure says why."""
    system, admin, owner, media = env
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


def _oriented_jpeg(size: tuple[int, int], color: tuple[int, int, int], orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _decoded(thumbhash: str) -> tuple[float, tuple[float, float, float]]:
    """(aspect ratio, average RGB 0-255) of the image thash decodes from a base64 thumbhash."""
    width, height, rgba = thash.thumb_hash_to_rgba(list(base64.b64decode(thumbhash)))
    pixels = [rgba[i : i + 4] for i in range(0, len(rgba), 4)]
    average = tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3))
    return width / height, (average[0], average[1], average[2])


async def test_every_asset_with_a_thumbnail_gets_a_thumbhash_of_its_shape_and_colour(
    infra: Infra, tmp_path: Path
) -> None:
    """Immich's e2e checks `thumbhash` after a scan; its clients paint it while a thumbnail
    loads, so it must be upright (orientation applied) and of the photo's colour."""
    async with media_system(infra, tmp_path) as m:
        await _check_thumbhashes(m.system, m.admin, m.owner["id"], m.root, m.owner_headers)


async def _check_thumbhashes(
    system: System, admin: dict[str, str], owner: str, media: Path, mine: dict[str, str]
) -> None:
    (media / "wide-red.jpg").write_bytes(jpeg_bytes((400, 200), (220, 30, 30)))
    (media / "tall-blue.jpg").write_bytes(jpeg_bytes((150, 300), (30, 40, 210)))
    # Stored 400x200, displayed 200x400: the placeholder is portrait, like the thumbnail.
    (media / "turned-green.jpg").write_bytes(_oriented_jpeg((400, 200), (40, 200, 60), 6))
    (media / "broken.jpg").write_bytes(b"not a jpeg" * 20)
    lib = (await external_library(system, admin, owner, [str(media)]))["id"]
    await scan(system, admin, lib)
    assets = {Path(a["originalPath"]).name: a for a in await assets_read(system, admin, lib, 4)}

    expected = {
        "wide-red.jpg": (2.0, (220, 30, 30)),
        "tall-blue.jpg": (0.5, (30, 40, 210)),
        "turned-green.jpg": (0.5, (40, 200, 60)),
    }
    for name, (ratio, colour) in expected.items():
        thumbhash = assets[name]["thumbhash"]
        assert isinstance(thumbhash, str) and thumbhash, name
        decoded_ratio, average = _decoded(thumbhash)
        assert decoded_ratio == pytest.approx(ratio, rel=0.3), (name, decoded_ratio)
        for got, want in zip(average, colour, strict=True):
            assert abs(got - want) < 30, (name, average, colour)
        # The same answer from the asset itself and from its timeline bucket.
        detail = await ok(
            await system.client.get(f"/api/assets/{assets[name]['id']}", headers=admin)
        )
        assert detail["thumbhash"] == thumbhash
    assert assets["broken.jpg"]["thumbhash"] is None

    buckets = await ok(await system.client.get("/api/timeline/buckets", headers=mine))
    hashes: dict[str, str | None] = {}
    for bucket in buckets:
        month = await ok(
            await system.client.get(
                "/api/timeline/bucket", headers=mine, params={"timeBucket": bucket["timeBucket"]}
            )
        )
        hashes.update(zip(month["id"], month["thumbhash"], strict=True))
    assert {hashes.get(assets[n]["id"]) for n in expected} == {
        assets[n]["thumbhash"] for n in expected
    }
