"""Moves keep their albums: a folder renamed or a file moved inside a library, end to end."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.scanner.moves import moved_details
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
) -> AsyncIterator[tuple[System, dict[str, str], Path, str]]:
    async with media_system(infra, tmp_path) as m:
        trip = m.root / "2023" / "trip"
        trip.mkdir(parents=True)
        for name in ("Canon_40D.jpg", "Nikon_D70.jpg"):
            shutil.copy(SAMPLES / "jpg" / name, trip / name)
        lib = (await external_library(m.system, m.admin, m.owner["id"], [str(m.root)]))["id"]
        await scan(m.system, m.admin, lib)
        await _read(m.system, m.owner_headers, lib, 2)
        yield m.system, m.owner_headers, m.root, lib  # albums hold only their owner's assets


async def _read(system: System, headers: dict[str, str], lib: str, n: int) -> dict[str, Any]:
    """Assets by path once there are n, every one read."""
    return {a["originalPath"]: a for a in await assets_read(system, headers, lib, n)}


async def _album(system: System, admin: dict[str, str], asset_ids: list[str]) -> str:
    body = {"albumName": "Trip", "assetIds": asset_ids}
    return (await ok(await system.client.post("/api/albums", headers=admin, json=body), 201))["id"]


async def _members(system: System, admin: dict[str, str], album: str) -> set[str]:
    body = await ok(await system.client.get(f"/api/albums/{album}", headers=admin))
    return {a["originalPath"] for a in body["assets"]}


async def _wait_members(
    system: System, admin: dict[str, str], album: str, expected: set[str]
) -> None:
    async def settled() -> bool:
        return await _members(system, admin, album) == expected

    await eventually(settled, 30, f"album {album} to hold {sorted(expected)}")


async def test_renamed_folder_keeps_its_photos_in_their_albums(env: Any) -> None:
    """The move's offline mark and the new files' checksums land in one scan, in any order."""
    system, admin, media, lib = env
    before = await _read(system, admin, lib, 2)
    old = media / "2023" / "trip"
    canon = before[str(old / "Canon_40D.jpg")]
    album = await _album(system, admin, [canon["id"]])
    other = await _album(system, admin, [before[str(old / "Nikon_D70.jpg")]["id"]])

    os.rename(old, media / "2023" / "Trip to Italy")
    await scan(system, admin, lib)
    after = await _read(system, admin, lib, 4)
    new = media / "2023" / "Trip to Italy"
    assert after[str(old / "Canon_40D.jpg")]["isOffline"] is True  # the old asset stays, offline
    assert after[str(new / "Canon_40D.jpg")]["isOffline"] is False
    await _wait_members(system, admin, album, {str(new / "Canon_40D.jpg")})
    await _wait_members(system, admin, other, {str(new / "Nikon_D70.jpg")})

    # Removing offline files no longer costs the album anything.
    r = await system.client.post(f"/api/libraries/{lib}/removeOffline", headers=admin)
    assert r.status_code == 200

    async def removed() -> bool:
        return len(await assets_of(system, admin, lib)) == 2

    await eventually(removed, 30, "offline assets to be removed")
    assert await _members(system, admin, album) == {str(new / "Canon_40D.jpg")}


async def test_copy_found_first_then_original_deleted_takes_its_place(env: Any) -> None:
    """The new side's checksum is known long before the old side goes offline."""
    system, admin, media, lib = env
    original = media / "2023" / "trip" / "Canon_40D.jpg"
    before = await _read(system, admin, lib, 2)
    album = await _album(system, admin, [before[str(original)]["id"]])
    (media / "best").mkdir()
    copy = media / "best" / "canon.jpg"
    shutil.copy2(original, copy)
    await scan(system, admin, lib)
    await _read(system, admin, lib, 3)
    assert await _members(system, admin, album) == {str(original)}  # both online: nothing moves

    original.unlink()
    await scan(system, admin, lib)
    await _wait_members(system, admin, album, {str(copy)})

    # Moved back: the first asset comes back online and returns to the album.
    shutil.move(copy, original)
    await scan(system, admin, lib)
    await _wait_members(system, admin, album, {str(original)})


async def test_different_content_at_the_new_path_is_not_a_move(env: Any) -> None:
    system, admin, media, lib = env
    trip = media / "2023" / "trip"
    before = await _read(system, admin, lib, 2)
    album = await _album(system, admin, [before[str(trip / "Canon_40D.jpg")]["id"]])
    probe = await _album(system, admin, [before[str(trip / "Nikon_D70.jpg")]["id"]])
    (trip / "Canon_40D.jpg").unlink()
    (media / "2024").mkdir()
    shutil.copy(SAMPLES / "jpg" / "Pentax_K10D.jpg", media / "2024" / "Canon_40D.jpg")
    await scan(system, admin, lib)
    await _read(system, admin, lib, 3)
    # A real move after it in the stream: once it is carried, the mover has passed the above.
    shutil.move(trip / "Nikon_D70.jpg", media / "2024" / "Nikon_D70.jpg")
    await scan(system, admin, lib)
    await _wait_members(system, admin, probe, {str(media / "2024" / "Nikon_D70.jpg")})
    assert await _members(system, admin, album) == {str(trip / "Canon_40D.jpg")}


async def test_moved_photo_keeps_its_favourite_archive_description_and_rating(env: Any) -> None:
    """Details carry once, to an asset nobody edited; a later edit of the new one stays."""
    system, owner, media, lib = env
    old = media / "2023" / "trip"
    before = await _read(system, owner, lib, 2)
    canon, nikon = before[str(old / "Canon_40D.jpg")], before[str(old / "Nikon_D70.jpg")]
    details = {"isFavorite": True, "isArchived": True, "description": "Lake", "rating": 5}
    await ok(await system.client.put(f"/api/assets/{canon['id']}", headers=owner, json=details))

    os.rename(old, media / "2023" / "Italy")
    await scan(system, owner, lib)
    after = await _read(system, owner, lib, 4)
    new = media / "2023" / "Italy"
    moved_id = after[str(new / "Canon_40D.jpg")]["id"]

    async def moved_asset() -> dict[str, Any]:
        return await ok(await system.client.get(f"/api/assets/{moved_id}", headers=owner))  # type: ignore[no-any-return]

    async def carried() -> bool:
        return bool((await moved_asset())["isFavorite"])

    await eventually(carried, 30, "the moved photo to take its old self's details")
    moved = await moved_asset()
    assert moved["isArchived"] is True and moved["visibility"] == "archive"
    assert moved["exifInfo"]["description"] == "Lake" and moved["exifInfo"]["rating"] == 5
    untouched = after[str(new / "Nikon_D70.jpg")]
    assert untouched["isFavorite"] is False and untouched["visibility"] == "timeline"
    assert nikon["isFavorite"] is False

    # Carried once: the moved asset is edited now, so nothing is carried over it again.
    await ok(await system.client.put(f"/api/assets/{moved_id}", headers=owner, json={"rating": 2}))
    assert (
        await moved_details(await system.db(), [uuid.UUID(moved_id), uuid.UUID(canon["id"])]) == []
    )
