"""`folder_prints` (decision 0035): what PostgreSQL keeps of each folder for a *modified* scan is
what its assets say, after every kind of change, and the scanner's listing computes the same
fingerprint for an unchanged folder."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

import asyncpg

from services.scanner.crawl import Fence, list_dir
from shared.folderprints import ms
from shared.globs import ExclusionMatcher
from tests.factories import backdate, make_tree
from tests.helpers import ok
from tests.integration.conftest import World
from tests.integration.test_scan_subtree import sub_ms_mtimes

# The fingerprint as the scanner asked PostgreSQL for it before the table kept it.
RECOMPUTED = (
    "SELECT library_id, dir, count(*) FILTER (WHERE NOT is_offline), "
    "count(*) FILTER (WHERE is_offline), CASE WHEN bool_or(is_offline) THEN NULL ELSE "
    f"md5(coalesce(string_agg(original_path || '|' || {ms()} || '|' || sidecar_mtime_ms, "
    "E'\\n' ORDER BY original_path COLLATE \"C\"), '')) END FROM assets GROUP BY 1, 2"
)


async def _rows(w: World, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(w.system.settings.db.url)
    try:
        return sorted(tuple(r.values()) for r in await conn.fetch(sql))
    finally:
        await conn.close()


async def _kept_exactly(w: World) -> list[tuple[Any, ...]]:
    kept = await _rows(w, "SELECT library_id, dir, online, offline, print FROM folder_prints")
    assert kept == await _rows(w, RECOMPUTED)
    assert not await _rows(w, "SELECT * FROM folder_prints_dirty")
    return kept


async def test_folder_prints_are_what_the_assets_say_after_every_kind_of_change(
    world: World,
) -> None:
    files = make_tree(
        world.media,
        {f"{d}/p{j}.jpg": None for d in ("a", "b", "c/deep") for j in range(3)}
        | {"b/p1.xmp": b"<x/>"},
    )
    backdate(world.media)
    sub_ms_mtimes(world)
    lib = await world.library(world.media)
    await world.scan(lib)
    assert len(await _kept_exactly(world)) == 3

    os.utime(files["a/p0.jpg"], (1_700_000_000, 1_700_000_000))  # changed
    files["a/p2.jpg"].unlink()  # offline
    make_tree(world.media, {"b/new.jpg": None, "c/deep/p0.xmp": b"<x/>"})  # born, sidecar
    shutil.rmtree(world.media / "c")  # a folder gone: its assets offline
    state = await world.scan(lib, {"refreshModifiedFiles": True})
    assert (state["new"], state["changed"], state["missing"]) == (1, 1, 4)
    kept = {row[1].rsplit("/", 1)[-1]: row for row in await _kept_exactly(world)}
    assert kept["a"][2:4] == (2, 1) and kept["a"][4] is None  # an offline file: no print
    assert kept["b"][2:4] == (4, 0) and kept["b"][4] is not None

    make_tree(world.media, {"a/p2.jpg": None})  # back: online again
    backdate(world.media / "a")
    await world.scan(lib, {"refreshModifiedFiles": True})
    await _kept_exactly(world)
    r = await world.system.client.post(f"/api/libraries/{lib}/removeOffline", headers=world.admin)
    assert (await ok(r))["removed"] == 3
    assert {row[1].rsplit("/", 1)[-1] for row in await _kept_exactly(world)} == {"a", "b"}
    # A library's deletion (one DELETE of all its assets): tests/e2e/test_replay.py compares the
    # table kept live with the one a replay refills from the assets.


async def test_an_unchanged_folders_listing_has_the_kept_fingerprint(world: World) -> None:
    make_tree(
        world.media,
        {f"roll/IMG_{j}.jpg": None for j in range(5)} | {"roll/IMG_2.xmp": b"<x/>"},
    )
    backdate(world.media)
    sub_ms_mtimes(world)
    lib = await world.library(world.media)
    await world.scan(lib)
    folder = str(world.media.resolve() / "roll")
    (print_,) = [
        row[0]
        for row in await _rows(
            world,
            f"SELECT print FROM folder_prints WHERE library_id = '{uuid.UUID(lib)}' "
            f"AND dir = '{folder}'",
        )
    ]
    fence = Fence(str(world.media.resolve()), ExclusionMatcher([]))
    listing = list_dir(folder, fence, stat_files=True)
    try:
        assert listing.fingerprint() == print_
    finally:
        listing.close()
