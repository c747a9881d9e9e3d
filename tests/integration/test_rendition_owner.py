"""The metadata service owns the `thumbs` bucket: removing an asset removes its renditions, a
removed asset's new life keeps its own, and a deleted library leaves no rendition behind."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import ObjectNotFoundError

from services.metadata.renditions.store import SEQ_HEADER, RenditionStore, rendition_keys
from tests.helpers import (
    SAMPLES,
    MediaSystem,
    assets_of,
    assets_read,
    external_library,
    media_system,
    scan,
)
from tests.system import Infra, System, eventually, open_system

pytestmark = pytest.mark.skipif(not SAMPLES.exists(), reason=f"corpus not found at {SAMPLES}")


async def _made(system: System, asset_id: str | uuid.UUID) -> list[int | None]:
    """The event sequence each of the asset's two renditions was made from (None: absent)."""
    store = system.ctx.thumbs
    assert store is not None
    out: list[int | None] = []
    for key in rendition_keys(uuid.UUID(str(asset_id))):
        try:
            info = await store.get_info(key)
        except ObjectNotFoundError:
            out.append(None)
            continue
        out.append(int((info.headers or {})[SEQ_HEADER][0]))
    return out


async def _scanned(m: MediaSystem) -> tuple[str, dict[str, str]]:
    """Two camera JPEGs scanned and read: the library id and the asset ids by file name."""
    for name in ("Canon_40D.jpg", "Nikon_D70.jpg"):
        shutil.copy(SAMPLES / "jpg" / name, m.root / name)
    lib = (await external_library(m.system, m.admin, m.owner["id"], [str(m.root)]))["id"]
    await scan(m.system, m.admin, lib)
    read = await assets_read(m.system, m.admin, lib, 2)
    return lib, {Path(a["originalPath"]).name: a["id"] for a in read}


async def test_removed_asset_loses_renditions_and_its_new_life_gets_its_own(
    infra: Infra, tmp_path: Path
) -> None:
    async with media_system(infra, tmp_path) as m:
        system, admin = m.system, m.admin
        lib, ids = await _scanned(m)
        canon, nikon = ids["Canon_40D.jpg"], ids["Nikon_D70.jpg"]
        first_life = await _made(system, canon)
        assert None not in first_life

        (m.root / "Canon_40D.jpg").rename(tmp_path / "Canon_40D.jpg")
        await scan(system, admin, lib)
        r = await system.client.post(f"/api/libraries/{lib}/removeOffline", headers=admin)
        assert r.json()["removed"] == 1, r.text
        removed_at, _ = await system.ctx.bus.last_event("asset", canon)

        async def gone() -> bool:
            return await _made(system, canon) == [None, None]

        await eventually(gone, 30, "the removed asset's renditions deleted")
        assert None not in await _made(system, nikon)

        # The file comes back: the same asset id starts a new life, with renditions of its own.
        (tmp_path / "Canon_40D.jpg").rename(m.root / "Canon_40D.jpg")
        await scan(system, admin, lib)
        await assets_read(system, admin, lib, 2)
        second_life = await _made(system, canon)
        assert all(s is not None and s > removed_at for s in second_life)

        # The removal seen again (a redelivery, a consumer replayed from the start) succeeds
        # and deletes nothing of the new life.
        store = RenditionStore(system.ctx.nc.jetstream(), system.settings.nats)
        assert await store.remove(uuid.UUID(canon), removed_at) == 0
        assert await _made(system, canon) == second_life


async def test_renditions_marked_by_event_so_older_readings_never_win(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path, projector=False) as system:
        store = RenditionStore(system.ctx.nc.jetstream(), system.settings.nats)
        asset = uuid.uuid4()
        assert await store.put(asset, 10, b"thumb-10", b"preview-10") == rendition_keys(asset)
        assert await store.put(asset, 30, b"thumb-30", b"preview-30") is not None
        assert await store.put(asset, 20, b"thumb-20", b"preview-20") is None  # overtaken
        assert await _made(system, asset) == [30, 30]
        assert await store.remove(asset, 25) == 0  # a removal older than what is there
        assert await store.remove(asset, 31) == 2
        assert await store.remove(asset, 31) == 0  # again: nothing left, no error
        assert await _made(system, asset) == [None, None]


async def test_deleted_library_leaves_no_renditions(infra: Infra, tmp_path: Path) -> None:
    """The scanner is stopped before the deletion: the renditions' owner finishes it."""
    async with media_system(infra, tmp_path) as m:
        system, admin = m.system, m.admin
        lib, by_name = await _scanned(m)
        ids = list(by_name.values())
        for asset_id in ids:
            assert None not in await _made(system, asset_id)
        await system.stop("scanner")

        r = await system.client.delete(f"/api/libraries/{lib}", headers=admin)
        assert r.status_code == 204, r.text

        async def deleted() -> bool:
            made = [await _made(system, i) for i in ids]
            rows: list[Any] = await assets_of(system, admin, lib)
            return made == [[None, None]] * 2 and rows == []

        await eventually(deleted, 30, "the library's renditions and assets gone")
        listed = await system.client.get("/api/libraries", headers=admin)
        assert lib not in {x["id"] for x in listed.json()}
