"""The metadata service end to end: scan real camera files, read EXIF, store thumbnails."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
import thash
from PIL import Image

from services.metadata.app import serve as serve_metadata
from services.metadata.handlers import thumbnail_keys
from shared.settings import Settings
from tests.factories import jpeg_bytes
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


async def test_camera_files_get_exif_and_thumbnails(metadata_env: Any) -> None:
    system, admin, owner, media = metadata_env
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


async def test_unreadable_file_is_a_recorded_failure_and_nothing_stops(metadata_env: Any) -> None:
    system, admin, owner, media = metadata_env
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
    metadata_env: Any,
) -> None:
    """Header and EXIF intact, pixel data cut off (a copy that stopped half way): the asset is
    listed with what was read, and the failure shows through the API."""
    system, admin, owner, media = metadata_env
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


async def test_changed_file_is_reread_on_modified_scan(metadata_env: Any) -> None:

    system, admin, owner, media = metadata_env
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


async def test_sidecar_appearing_changing_and_going_is_picked_up_by_modified_scan(
    metadata_env: Any,
) -> None:

    system, admin, owner, media = metadata_env
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
