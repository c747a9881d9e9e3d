"""Scanning external libraries through the real API, NATS, PostgreSQL and files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shared.bus import EventBus
from tests.factories import backdate, make_tree, set_mtime
from tests.fsrace import swapping
from tests.helpers import ok
from tests.integration.conftest import World


class TestScanNew:
    async def test_new_files_become_assets(self, world: World) -> None:
        files = make_tree(
            world.media / "photos",
            {
                "a.jpg": None,
                "sub/b.JPG": None,
                "sub/deeper/c.mp4": b"x",
                "notes.txt": b"t",
                ".hidden/d.jpg": None,
                "sub/.e.jpg": None,
            },
        )
        lib = await world.library(world.media / "photos")
        state = await world.scan(lib)
        assets = await world.assets(lib)
        assert set(assets) == {str(files[k]) for k in ("a.jpg", "sub/b.JPG", "sub/deeper/c.mp4")}
        assert assets[str(files["sub/deeper/c.mp4"])]["type"] == "VIDEO"
        assert state["new"] == 3 and state["filesSeen"] == 3
        a = assets[str(files["a.jpg"])]
        assert a["libraryId"] == lib and a["isOffline"] is False
        assert a["originalFileName"] == "a.jpg"
        detail = await ok(
            await world.system.client.get(f"/api/assets/{a['id']}", headers=world.admin)
        )
        assert detail["originalPath"] == str(files["a.jpg"])

    async def test_unchanged_library_emits_no_asset_events(self, world: World) -> None:
        make_tree(world.media, {f"d{i}/p{j}.jpg": None for i in range(3) for j in range(5)})
        backdate(world.media)
        lib = await world.library(world.media)
        await world.scan(lib)
        before = await world.last_seq()
        state = await world.scan(lib)
        # Only the request and the finish are recorded.
        assert await world.last_seq() - before == 2
        assert state["new"] == state["changed"] == state["missing"] == 0

    async def test_new_mode_rescan_finds_changes_below_unchanged_folders(
        self, world: World
    ) -> None:
        files = make_tree(
            world.media, {"a/b/c/one.jpg": None, "a/two.jpg": None, "x/y/three.jpg": None}
        )
        backdate(world.media)
        lib = await world.library(world.media)
        await world.scan(lib)
        # Deep changes: only the touched folders' mtimes move, not their parents'.
        (world.media / "a/b/c/new.jpg").write_bytes(files["a/two.jpg"].read_bytes())
        files["x/y/three.jpg"].unlink()
        (world.media / "a/b/c/sub").mkdir()
        (world.media / "a/b/c/sub/deeper.jpg").write_bytes(files["a/two.jpg"].read_bytes())
        state = await world.scan(lib)
        assert state["new"] == 2 and state["missing"] == 1
        names = {Path(p).name: a["isOffline"] for p, a in (await world.assets(lib)).items()}
        assert names == {
            "one.jpg": False,
            "two.jpg": False,
            "new.jpg": False,
            "deeper.jpg": False,
            "three.jpg": True,
        }
        # A folder removed below an unchanged grandparent takes its assets offline too.
        shutil.rmtree(world.media / "a/b/c/sub")
        await world.scan(lib)
        assert {Path(p).name for p in await world.assets(lib, isOffline=True)} == {
            "three.jpg",
            "deeper.jpg",
        }

    async def test_glob_characters_in_folder_names_are_literal(self, world: World) -> None:
        odd = "weird [1] {a,b} *?! @#$%^&=+~|<>; 'q' \"dq\" (x)"
        files = make_tree(world.media / odd, {"p.jpg": None, "sub [2]/q.jpg": None})
        lib = await world.library(world.media / odd)
        await world.scan(lib)
        assert set(await world.assets(lib)) == {str(p) for p in files.values()}


class TestModes:
    async def test_modified_rereads_only_files_whose_mtime_changed(self, world: World) -> None:
        files = make_tree(world.media, {"a.jpg": None, "b.jpg": None, "c.jpg": None})
        for p in files.values():
            set_mtime(p, 1_600_000_000)
        lib = await world.library(world.media)
        await world.scan(lib)
        set_mtime(files["a.jpg"], 1_700_000_000)
        # b changes content but keeps its mtime: not re-read.
        files["b.jpg"].write_bytes(b"different bytes")
        set_mtime(files["b.jpg"], 1_600_000_000)
        new_state = await world.scan(lib)
        assert new_state["changed"] == 0  # new mode never re-reads known files
        state = await world.scan(lib, {"refreshModifiedFiles": True})
        assert state["changed"] == 1
        asset = (await world.assets(lib))[str(files["a.jpg"])]
        assert asset["fileModifiedAt"].startswith("2023-11-14T22:13:20")

    async def test_force_rereads_every_file(self, world: World) -> None:
        make_tree(world.media, {"a.jpg": None, "b.jpg": None, "x/c.jpg": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        state = await world.scan(lib, {"refreshAllFiles": True})
        assert state["changed"] == 3 and state["new"] == 0


class TestOffline:
    async def test_deleted_file_goes_offline_and_comes_back(self, world: World) -> None:
        files = make_tree(world.media, {"a.jpg": None, "b.jpg": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        data = files["a.jpg"].read_bytes()
        files["a.jpg"].unlink()
        state = await world.scan(lib)
        assert state["missing"] == 1
        a = (await world.assets(lib))[str(files["a.jpg"])]
        assert a["isOffline"] is True and a["offlineReason"] == "deleted"
        offline = await world.assets(lib, isOffline=True)
        assert list(offline) == [str(files["a.jpg"])]
        files["a.jpg"].write_bytes(data)
        await world.scan(lib)
        a2 = (await world.assets(lib))[str(files["a.jpg"])]
        assert a2["isOffline"] is False and a2["id"] == a["id"]

    async def test_deleted_folder_takes_its_assets_offline(self, world: World) -> None:
        make_tree(world.media, {"keep/a.jpg": None, "gone/b.jpg": None, "gone/deep/c.jpg": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        shutil.rmtree(world.media / "gone")
        await world.scan(lib)
        offline = await world.assets(lib, isOffline=True)
        assert sorted(Path(p).name for p in offline) == ["b.jpg", "c.jpg"]

    async def test_exclusion_added_after_import_takes_assets_offline(self, world: World) -> None:
        files = make_tree(world.media, {"a.jpg": None, "raw/b.tif": None, "c.TIF": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        await ok(
            await world.system.client.put(
                f"/api/libraries/{lib}",
                headers=world.admin,
                json={"exclusionPatterns": ["**/*.tif"]},
            )
        )
        await world.scan(lib)
        assets = await world.assets(lib)
        assert assets[str(files["raw/b.tif"])]["offlineReason"] == "excluded"
        assert assets[str(files["c.TIF"])]["isOffline"] is True
        assert assets[str(files["a.jpg"])]["isOffline"] is False
        await ok(
            await world.system.client.put(
                f"/api/libraries/{lib}", headers=world.admin, json={"exclusionPatterns": []}
            )
        )
        await world.scan(lib)
        assert not await world.assets(lib, isOffline=True)

    async def test_a_pattern_naming_a_folder_excludes_the_files_beneath_it(
        self, world: World
    ) -> None:
        """Immich's e2e: `**/directoryA` keeps directoryA's files out (its crawler does not
        enter an ignored folder), and takes those already imported offline as `excluded`."""
        files = make_tree(
            world.media / "temp",
            {
                "directoryA/assetA.png": None,
                "directoryA/deep/c.jpg": None,
                "directoryB/b.jpg": None,
            },
        )
        lib = await world.library(world.media / "temp", exclusionPatterns=["**/directoryA"])
        await world.scan(lib)
        assert set(await world.assets(lib)) == {str(files["directoryB/b.jpg"])}

        other = await world.library(world.media / "temp")
        await world.scan(other)
        assert len(await world.assets(other)) == 3
        await ok(
            await world.system.client.put(
                f"/api/libraries/{other}",
                headers=world.admin,
                json={"exclusionPatterns": ["**/directoryA"]},
            )
        )
        await world.scan(other)
        offline = await world.assets(other, isOffline=True)
        assert {p: a["offlineReason"] for p, a in offline.items()} == {
            str(files["directoryA/assetA.png"]): "excluded",
            str(files["directoryA/deep/c.jpg"]): "excluded",
        }

    async def test_an_import_path_the_pattern_names_is_still_crawled(self, world: World) -> None:
        """The crawl starts at the import path: only folders below it are tested."""
        files = make_tree(world.media / "directoryA", {"a.jpg": None, "directoryA/b.jpg": None})
        lib = await world.library(world.media / "directoryA", exclusionPatterns=["**/directoryA"])
        await world.scan(lib)
        assert set(await world.assets(lib)) == {str(files["a.jpg"])}

    async def test_offline_reason_follows_its_current_cause(self, world: World) -> None:
        """A file deleted, then back in place but now excluded, is offline as `excluded`."""
        files = make_tree(world.media, {"keep.jpg": None, "raw/b.tif": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        data = files["raw/b.tif"].read_bytes()
        files["raw/b.tif"].unlink()
        await world.scan(lib)
        path = str(files["raw/b.tif"])
        assert (await world.assets(lib, isOffline=True))[path]["offlineReason"] == "deleted"
        files["raw/b.tif"].write_bytes(data)
        await ok(
            await world.system.client.put(
                f"/api/libraries/{lib}",
                headers=world.admin,
                json={"exclusionPatterns": ["**/*.tif"]},
            )
        )
        await world.scan(lib)
        assert (await world.assets(lib, isOffline=True))[path]["offlineReason"] == "excluded"
        files["raw/b.tif"].unlink()
        await ok(
            await world.system.client.put(
                f"/api/libraries/{lib}", headers=world.admin, json={"exclusionPatterns": []}
            )
        )
        await world.scan(lib)
        assert (await world.assets(lib, isOffline=True))[path]["offlineReason"] == "deleted"

    async def test_removed_import_path_takes_assets_offline(self, world: World) -> None:
        make_tree(world.media, {"one/a.jpg": None, "two/b.jpg": None})
        lib = await world.library(world.media / "one", world.media / "two")
        await world.scan(lib)
        await ok(
            await world.system.client.put(
                f"/api/libraries/{lib}",
                headers=world.admin,
                json={"importPaths": [str(world.media / "one")]},
            )
        )
        await world.scan(lib)
        offline = await world.assets(lib, isOffline=True)
        assert [a["offlineReason"] for a in offline.values()] == ["outside-import-paths"]

    async def test_unmounted_import_path_is_reported(self, world: World) -> None:
        make_tree(world.media, {"drive/a.jpg": None, "drive/b.jpg": None})
        lib = await world.library(world.media / "drive")
        await world.scan(lib)
        (world.media / "drive").rename(world.media / "unplugged")
        state = await world.scan(lib)
        assert state["unavailableImportPaths"] == [str(world.media / "drive")]
        offline = await world.assets(lib, isOffline=True)
        assert {a["offlineReason"] for a in offline.values()} == {"import-path-unavailable"}
        (world.media / "unplugged").rename(world.media / "drive")
        await world.scan(lib)
        assert not await world.assets(lib, isOffline=True)

    async def test_revoked_external_path_takes_assets_offline_and_reads_nothing(
        self, world: World
    ) -> None:
        make_tree(world.media, {"lib/a.jpg": None})
        lib = await world.library(world.media / "lib")
        await world.scan(lib)
        await ok(
            await world.system.client.put(
                f"/api/admin/users/{world.user['id']}",
                headers=world.admin,
                json={"externalPath": str(world.media / "elsewhere")},
            )
        )
        make_tree(world.media, {"lib/new.jpg": None})
        state = await world.scan(lib)
        assert state["unavailableImportPaths"] == [str(world.media / "lib")]
        assets = await world.assets(lib)
        assert [a["offlineReason"] for a in assets.values()] == ["outside-external-path"]
        assert "new.jpg" not in {Path(p).name for p in assets}

    async def test_remove_offline_deletes_only_offline_assets(self, world: World) -> None:
        files = make_tree(world.media, {"a.jpg": None, "b.jpg": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        files["a.jpg"].unlink()
        await world.scan(lib)
        r = await world.system.client.post(
            f"/api/libraries/{lib}/removeOffline", headers=world.admin
        )
        assert r.json() == {"removed": 1, "kept": 0, "keptReasons": {}}
        assert list(await world.assets(lib)) == [str(files["b.jpg"])]
        assert files["b.jpg"].exists()
        # The file put back is found again: the removed asset starts a new life.
        make_tree(world.media, {"a.jpg": None})
        await world.scan(lib)
        again = await world.assets(lib)
        assert sorted(again) == sorted(str(f) for f in files.values())
        assert again[str(files["a.jpg"])]["isOffline"] is False
        # Born again in its folder's event, it starts from its own subject's position (the
        # removal's, decision 0030): gone again, it goes offline again.
        files["a.jpg"].unlink()
        await world.scan(lib)
        assert (await world.assets(lib))[str(files["a.jpg"])]["isOffline"] is True

    async def test_moved_file_is_a_new_asset_and_old_path_goes_offline(self, world: World) -> None:
        files = make_tree(world.media, {"a/p.jpg": None})
        lib = await world.library(world.media)
        await world.scan(lib)
        old = (await world.assets(lib))[str(files["a/p.jpg"])]
        (world.media / "b").mkdir()
        files["a/p.jpg"].rename(world.media / "b" / "p.jpg")
        await world.scan(lib)
        assets = await world.assets(lib)
        assert assets[str(files["a/p.jpg"])]["isOffline"] is True
        moved = assets[str((world.media / "b" / "p.jpg").resolve())]
        assert moved["isOffline"] is False and moved["id"] != old["id"]


class TestIdentity:
    async def test_overlapping_import_paths_give_one_asset(self, world: World) -> None:
        make_tree(world.media, {"top/a.jpg": None, "top/inner/b.jpg": None})
        lib = await world.library(world.media / "top", world.media / "top" / "inner")
        await world.scan(lib)
        assert len(await world.assets(lib)) == 2

    async def test_same_bytes_in_two_libraries_are_two_assets(self, world: World) -> None:
        make_tree(world.media, {"x/a.jpg": None, "x/b.jpg": None})
        one = await world.library(world.media / "x")
        two = await world.library(world.media / "x")
        await world.scan(one)
        await world.scan(two)
        a, b = await world.assets(one), await world.assets(two)
        assert len(a) == len(b) == 2
        assert {v["id"] for v in a.values()}.isdisjoint({v["id"] for v in b.values()})


class TestHostileTrees:
    async def test_symlink_out_of_the_fence_is_skipped_and_reported(
        self, world: World, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret"
        make_tree(secret, {"s.jpg": None})
        make_tree(world.media, {"ok.jpg": None})
        (world.media / "escape").symlink_to(secret)
        (world.media / "escape.jpg").symlink_to(secret / "s.jpg")
        lib = await world.library(world.media)
        state = await world.scan(lib)
        assert [Path(p).name for p in await world.assets(lib)] == ["ok.jpg"]
        problems = {Path(p["path"]).name: p["problem"] for p in state["problems"]}
        assert "outside" in problems["escape"] and "outside" in problems["escape.jpg"]

    async def test_bad_entries_are_reported_and_the_scan_goes_on(self, world: World) -> None:
        make_tree(world.media, {"good.jpg": None, "sub/fine.jpg": None})
        (world.media / "loop").symlink_to(world.media)
        os.mkfifo(world.media / "pipe.jpg")
        bad_name = os.fsencode(str(world.media)) + b"/bad\xff.jpg"
        with open(bad_name, "wb") as f:
            f.write(b"x")
        bad_dir = os.fsencode(str(world.media)) + b"/dir\xfe"
        os.mkdir(bad_dir)
        with open(bad_dir + b"/inside.jpg", "wb") as f:
            f.write(b"x")
        (world.media / "dangling.jpg").symlink_to(world.media / "nowhere.jpg")
        lib = await world.library(world.media)
        state = await world.scan(lib)
        assert sorted(Path(p).name for p in await world.assets(lib)) == ["fine.jpg", "good.jpg"]
        problems = " | ".join(f"{p['path']}: {p['problem']}" for p in state["problems"])
        assert "loop" in problems and "pipe.jpg" in problems and "UTF-8" in problems
        assert "dir" in problems
        assert state["failed"] == len(state["problems"]) == 4

    async def test_no_outside_file_is_listed_while_a_folder_is_swapped(
        self, world: World, tmp_path: Path
    ) -> None:
        """The attack of the security issue: a folder trades places with a symlink to an
        outside folder (RENAME_EXCHANGE in a tight loop) during forced scans."""
        outside = tmp_path / "outside"
        make_tree(outside, {f"secret{i}.jpg": None for i in range(5)})
        make_tree(world.media, {f"album/a{i}.jpg": None for i in range(5)})
        (world.media / "bait").symlink_to(outside)
        lib = await world.library(world.media)
        await world.scan(lib)
        seen: set[str] = set()
        with swapping(str(world.media / "album"), str(world.media / "bait")):
            for _ in range(40):
                await world.scan(lib, {"refreshAllFiles": True})
                seen |= set(await world.assets(lib))
        # The real folder is met under either name (both are inside): only its files count.
        names = {f"{world.media}/{d}/a{i}.jpg" for d in ("album", "bait") for i in range(5)}
        assert seen <= names, sorted(seen - names)

    async def test_import_path_that_is_a_file_is_reported(self, world: World) -> None:
        make_tree(world.media, {"dir/a.jpg": None, "file.jpg": None})
        lib = await world.library(world.media / "dir", world.media / "file.jpg")
        state = await world.scan(lib)
        assert state["unavailableImportPaths"] == [str(world.media / "file.jpg")]
        assert "Not a directory" in state["problems"][0]["problem"]
        assert len(await world.assets(lib)) == 1


async def test_folder_that_cannot_be_listed_is_a_recorded_problem(world: World) -> None:
    """A folder replaced by a file (or unreadable, EACCES, which root cannot provoke) between
    being queued and being listed: the problem is recorded and nothing else changes."""
    import uuid

    from services.scanner.handlers import Scanner
    from shared.events import ScanMode
    from shared.work import WatchFolder

    files = make_tree(world.media, {"a.jpg": None, "was-a-folder": b"now a file"})
    lib = await world.library(world.media)
    await world.scan(lib)
    scanner = Scanner(world.system.ctx.nc, await world.system.db(), world.system.settings)
    task = WatchFolder(
        scan_id=uuid.uuid4(),
        library_id=uuid.UUID(lib),
        path=str(files["was-a-folder"]),
        import_path=str(world.media),
        mode=ScanMode.NEW,
    )
    await scanner.run_dir(task)
    _, last = await EventBus(world.system.ctx.nc, world.system.settings.nats).last_event(
        "scans", lib
    )
    assert last is not None and type(last).__name__ == "ScanProblemFound"
    assert "cannot read folder" in last.message  # type: ignore[attr-defined]
    assert [a["isOffline"] for a in (await world.assets(lib)).values()] == [False]


async def test_a_folder_task_redone_after_a_lost_ack_is_counted_once(world: World) -> None:
    """The same folder task run twice (its ack was lost, NATS delivered it again): the live
    counters and the total the scan records count its files once, and nothing goes negative."""
    import uuid

    from services.scanner.handlers import Scanner
    from shared.events import ScanMode
    from shared.scanprogress import read_progress, update_progress
    from shared.work import ScanFolder

    make_tree(world.media, {f"album/a{i}.jpg": None for i in range(7)})
    lib = await world.library(world.media)
    await world.scan(lib)
    scanner = Scanner(world.system.ctx.nc, await world.system.db(), world.system.settings)
    js, nats = world.system.ctx.nc.jetstream(), world.system.settings.nats
    scan_id = uuid.uuid4()
    await update_progress(js, nats, scan_id, pending=1)
    task = ScanFolder(
        scan_id=scan_id,
        library_id=uuid.UUID(lib),
        path=str(world.media / "album"),
        import_path=str(world.media),
        mode=ScanMode.MODIFIED,
    )
    await scanner.run_dir(task)
    await scanner.run_dir(task)  # redelivered
    progress = await read_progress(js, nats, scan_id)
    assert (progress.files_seen, progress.dirs_done, progress.pending) == (7, 1, 0)
    await scanner.finish_scan(scan_id, uuid.UUID(lib))
    _, last = await EventBus(world.system.ctx.nc, nats).last_event("scans", lib)
    assert last is not None and last.files_seen == 7  # type: ignore[attr-defined]
