"""Moves keep their albums: a folder renamed or a file moved inside a library, end to end."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import assets_of, create_user, external_library, ok, scan, sign_up_admin
from tests.system import Infra, System, eventually, open_system, run_metadata, run_scanner

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "exif-samples"
pytestmark = pytest.mark.skipif(not CORPUS.exists(), reason=f"corpus not found at {CORPUS}")


@pytest.fixture
async def env(
    infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[System, dict[str, str], Path, str]]:
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        await system.start("metadata", run_metadata)
        media = tmp_path / "media"
        (media / "2023" / "trip").mkdir(parents=True)
        for name in ("Canon_40D.jpg", "Nikon_D70.jpg"):
            shutil.copy(CORPUS / "jpg" / name, media / "2023" / "trip" / name)
        admin = await sign_up_admin(system)
        owner, headers = await create_user(system, admin, "owner@example.com", str(media))
        lib = (await external_library(system, admin, owner["id"], [str(media)]))["id"]
        await scan(system, admin, lib)
        await _read(system, headers, lib, 2)
        yield system, headers, media, lib  # albums hold only their owner's assets


async def _read(system: System, admin: dict[str, str], lib: str, n: int) -> dict[str, Any]:
    """Assets by path once n of them exist and every one has its content read."""
    by_path: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal by_path
        items = await assets_of(system, admin, lib)
        by_path = {a["originalPath"]: a for a in items}
        return len(items) == n and all(a["metadataStatus"] == "done" for a in items)

    await eventually(done, 60, f"{n} assets with their content read")
    return by_path


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
    assert r.status_code == 204

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
    shutil.copy(CORPUS / "jpg" / "Pentax_K10D.jpg", media / "2024" / "Canon_40D.jpg")
    await scan(system, admin, lib)
    await _read(system, admin, lib, 3)
    # A real move after it in the stream: once it is carried, the mover has passed the above.
    shutil.move(trip / "Nikon_D70.jpg", media / "2024" / "Nikon_D70.jpg")
    await scan(system, admin, lib)
    await _wait_members(system, admin, probe, {str(media / "2024" / "Nikon_D70.jpg")})
    assert await _members(system, admin, album) == {str(trip / "Canon_40D.jpg")}
