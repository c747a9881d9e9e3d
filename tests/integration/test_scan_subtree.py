"""*Modified* rescans walk subtrees (decision 0026): an unchanged file costs a stat, no event."""

from __future__ import annotations

import os
import shutil
from collections import Counter

import pytest

from services.scanner import subtree
from shared.bus import EventBus
from tests.factories import backdate, make_tree
from tests.integration.conftest import World


async def subject_counts(w: World) -> Counter[str]:
    """Messages on the EVENTS stream, by subject."""
    nats = w.system.settings.nats
    info = await w.system.ctx.nc.jetstream().stream_info(
        nats.name("EVENTS"), subjects_filter=nats.subject("events", ">")
    )
    return Counter(info.state.subjects or {})


async def tasks_done(w: World, scan_id: str) -> int:
    """The tasks of a scan: each one done has its key in `scan-tasks` (decision 0029)."""
    bucket = w.system.settings.nats.name("scan-tasks")
    info = await w.system.ctx.nc.jetstream().stream_info(
        f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.{scan_id}.>"
    )
    return len(info.state.subjects or {})


def sub_ms_mtimes(w: World) -> None:
    """Mtimes with nanoseconds, as real cameras and copies leave them (rounded to the ms on
    the way into the read model, compared in ms on the way back)."""
    for i, path in enumerate(sorted(p for p in w.media.rglob("*") if p.is_file())):
        ns = 1_600_000_000_000_000_000 + i * 1_000_000_007 + 499_999 + (i % 3) * 250_000
        os.utime(path, ns=(ns, ns))


class TestModifiedRescan:
    async def test_an_unchanged_library_publishes_only_the_scans_bookkeeping(
        self, world: World
    ) -> None:
        make_tree(
            world.media,
            {f"{y}/{m}/p{j}.jpg": None for y in ("2023", "2024") for m in "ab" for j in range(4)}
            | {"top.jpg": None, "2023/a/p0.xmp": b"<x/>"},
        )
        backdate(world.media)
        sub_ms_mtimes(world)  # after backdate, which sets whole seconds
        lib = await world.library(world.media)
        await world.scan(lib)
        before = await subject_counts(world)
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        after = await subject_counts(world)
        grown = {s: n - before.get(s, 0) for s, n in after.items() if n != before.get(s, 0)}
        scans = EventBus(world.system.ctx.nc, world.system.settings.nats).aggregate_subject(
            "scans", lib
        )
        # The request and the finish, on the scan's own subject; nothing about any asset.
        assert grown == {scans: 2}
        assert state["new"] == state["changed"] == state["missing"] == 0
        assert state["filesSeen"] == 17

    async def test_each_change_beside_unchanged_files_is_found(self, world: World) -> None:
        """Files are stat'ed while they are listed and a folder is compared by its fingerprint
        first, its names against the patterns in one search: a moved mtime, a new sidecar, a
        new file, a deleted one and new files that a pattern excludes are each found, beside
        files that did not change."""
        files = make_tree(
            world.media,
            {f"a/p{j}.jpg": None for j in range(6)}
            | {"b/q.jpg": None, "b/@eaDir/t.jpg": None, "c/r0.jpg": None, "c/r1.jpg": None},
        )
        sub_ms_mtimes(world)
        backdate(world.media)
        lib = await world.library(world.media, exclusionPatterns=["**/@eaDir/**", "**/*-x.jpg"])
        assert (await world.scan(lib))["new"] == 9
        os.utime(files["a/p0.jpg"], (1_700_000_000, 1_700_000_000))
        files["a/p3.jpg"].unlink()
        make_tree(
            world.media,
            {
                "c/r1.xmp": b"<x/>",
                "a/new.jpg": None,
                "a/p9-x.jpg": None,
                "b/@eaDir/u.jpg": None,
            },
        )
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        assert (state["new"], state["changed"], state["missing"]) == (1, 2, 1)
        online = await world.assets(lib, isOffline=False)
        assert str(world.media / "a" / "new.jpg") in online
        assert not {str(world.media / "a" / "p9-x.jpg"), str(world.media / "b/@eaDir/u.jpg")} & set(
            online
        )
        again = await world.scan(lib, {"refreshModifiedFiles": True})
        assert again["new"] == again["changed"] == again["missing"] == 0

    async def test_a_split_subtree_finds_every_change(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Budgets of two folders, one per batch: the walk is cut into many tasks, and what
        changed anywhere is found once, with the scan's counts whole."""
        monkeypatch.setattr(subtree, "BUDGET_FOLDERS", 2)
        monkeypatch.setattr(subtree, "BATCH_FOLDERS", 1)
        monkeypatch.setattr(subtree, "UNCHANGED_SHARE", 1)
        files = make_tree(
            world.media,
            {f"d{i}/e{k}/p{j}.jpg": None for i in range(3) for k in range(2) for j in range(2)},
        )
        backdate(world.media)
        lib = await world.library(world.media)
        await world.scan(lib)
        os.utime(files["d2/e1/p0.jpg"], (1_700_000_000, 1_700_000_000))
        shutil.rmtree(world.media / "d1" / "e0")
        make_tree(world.media, {"d0/e1/new.jpg": None, "d3/fresh.jpg": None})
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        assert (state["new"], state["changed"], state["missing"]) == (2, 1, 2)
        # media, d0..d3 and their folders: each listed once, whichever task listed it.
        assert state["dirsDone"] == 1 + 4 + 5
        assert state["filesSeen"] == 12 - 2 + 2
        offline = await world.assets(lib, isOffline=True)
        assert sorted(offline) == sorted(str(files[f"d1/e0/p{j}.jpg"]) for j in range(2))
        again = await world.scan(lib, {"refreshModifiedFiles": True})
        assert again["new"] == again["changed"] == again["missing"] == 0

    async def test_a_spent_budget_leaves_only_folders_with_subfolders_to_further_tasks(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Once its budget is spent, a task still lists the folders the index knows without
        subfolders (a batched walk leaves hundreds behind, each cheaper than a task); the
        others, and a new subfolder met meanwhile, go to further tasks."""
        monkeypatch.setattr(subtree, "BUDGET_FOLDERS", 2)
        monkeypatch.setattr(subtree, "BATCH_FOLDERS", 1)
        monkeypatch.setattr(subtree, "UNCHANGED_SHARE", 1)
        files = make_tree(
            world.media, {f"d{i}/e{k}/p.jpg": None for i in range(3) for k in range(2)}
        )
        backdate(world.media)
        lib = await world.library(world.media)
        await world.scan(lib)
        os.utime(files["d0/e1/p.jpg"], (1_700_000_000, 1_700_000_000))
        make_tree(world.media, {"d0/e0/new/n.jpg": None})
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        assert (state["new"], state["changed"], state["missing"]) == (1, 1, 0)
        assert state["dirsDone"] == 1 + 3 + 6 + 1
        # The root's task (media, d0 and d0's two folders), d1's, d2's and d0/e0/new's.
        assert await tasks_done(world, state["scanId"]) == 4

    async def test_an_unchanged_subtree_counts_a_quarter_against_the_budget(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A folder whose fingerprint matched costs a stat per file and no event: up to eight
        such folders fit a budget of two, while a folder that changed counts whole (decision
        0031). The scanner's digest of a folder matches PostgreSQL's with a name beyond ASCII,
        a sidecar and mtimes below the ms."""
        monkeypatch.setattr(subtree, "BUDGET_FOLDERS", 2)
        monkeypatch.setattr(subtree, "BATCH_FOLDERS", 1)
        files = make_tree(
            world.media,
            {f"d{i}/e/p.jpg": None for i in range(3)}
            | {"d0/e/\u00e9t\u00e9 \u65e5.jpg": None, "d1/e/p.xmp": b"<x/>"},
        )
        backdate(world.media)
        sub_ms_mtimes(world)  # after backdate, which sets whole seconds
        lib = await world.library(world.media)
        await world.scan(lib)
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        assert state["dirsDone"] == 7
        assert await tasks_done(world, state["scanId"]) == 1
        for i in range(2):
            os.utime(files[f"d{i}/e/p.jpg"], (1_700_000_000, 1_700_000_000))
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        assert (state["changed"], state["dirsDone"]) == (2, 7)
        assert await tasks_done(world, state["scanId"]) > 1
