"""Libraries on drives that come and go: unplugged is not deleted, and what returns comes back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.scanner import probes
from tests.factories import backdate, make_tree
from tests.helpers import login, ok
from tests.integration.conftest import World


async def owner(w: World) -> dict[str, str]:
    return await login(w.system, "owner@example.com", "pw-owner@example.com")


async def albums_of(w: World, name: str) -> list[str]:
    user = await owner(w)
    albums = await ok(await w.system.client.get("/api/albums", headers=user))
    (album,) = [a for a in albums if a["albumName"] == name]
    detail = await ok(await w.system.client.get(f"/api/albums/{album['id']}", headers=user))
    return sorted(a["originalPath"] for a in detail["assets"])


class TestReturningFiles:
    async def test_replugged_drive_comes_back_under_a_new_scan(self, world: World) -> None:
        """The drive is unplugged (its folder moved away), scanned, plugged in again with every
        folder's mtime as it was: the default *new* scan brings every asset back."""
        files = make_tree(world.media, {"usb/a.jpg": None, "usb/2024/b.jpg": None})
        backdate(world.media / "usb")
        lib = await world.library(world.media / "usb")
        await world.scan(lib)
        (world.media / "usb").rename(world.media / "away")
        await world.scan(lib)
        assert len(await world.assets(lib, isOffline=True)) == 2
        (world.media / "away").rename(world.media / "usb")  # same folder mtimes
        await world.scan(lib)
        assets = await world.assets(lib)
        assert sorted(assets) == sorted(str(p) for p in files.values())
        assert not [a for a in assets.values() if a["isOffline"]]

    async def test_folder_renamed_away_and_back_comes_back(self, world: World) -> None:
        make_tree(world.media, {"lib/keep.jpg": None, "lib/trip/a.jpg": None})
        backdate(world.media / "lib")
        lib = await world.library(world.media / "lib")
        await world.scan(lib)
        (world.media / "lib" / "trip").rename(world.media / "trip-away")
        await world.scan(lib)
        offline = await world.assets(lib, isOffline=True)
        assert [Path(p).name for p in offline] == ["a.jpg"]
        (world.media / "trip-away").rename(world.media / "lib" / "trip")
        backdate(world.media / "lib")  # even with the parent's mtime put back as it was
        await world.scan(lib)
        assert not await world.assets(lib, isOffline=True)


class TestUnmountedIsNotDeleted:
    async def test_empty_mount_point_is_unavailable_not_deleted(self, world: World) -> None:
        make_tree(world.media, {"usb/a.jpg": None, "usb/sub/b.jpg": None})
        lib = await world.library(world.media / "usb")
        await world.scan(lib)
        await album_with_everything(world, lib)
        (world.media / "usb").rename(world.media / "drive")
        (world.media / "usb").mkdir()  # the mount point stays behind, empty
        state = await world.scan(lib)
        assert state["unavailableImportPaths"] == [str(world.media / "usb")]
        problem = " ".join(p["problem"] for p in state["problems"])
        assert "is empty; it held 2 files at the last scan" in problem
        assert "mounted" in problem
        offline = await world.assets(lib, isOffline=True)
        assert {a["offlineReason"] for a in offline.values()} == {"import-path-unavailable"}
        removed = await ok(
            await world.system.client.post(
                f"/api/libraries/{lib}/removeOffline", headers=world.admin
            )
        )
        assert removed == {"removed": 0, "kept": 2, "keptReasons": {"import-path-unavailable": 2}}
        (world.media / "usb").rmdir()
        (world.media / "drive").rename(world.media / "usb")  # plugged in again
        await world.scan(lib)
        assert not await world.assets(lib, isOffline=True)
        assert len(await albums_of(world, "everything")) == 2

    async def test_mount_point_on_its_parents_device_is_unavailable(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A drive was mounted at the import path (another device than its parent's); now the
        folder sits on its parent's device and holds something else: not a deletion."""
        make_tree(world.media, {"usb/a.jpg": None})
        real_device = probes.device_of
        parent = os.stat(world.media).st_dev

        def mounted(path: str) -> int:
            return parent + 1 if path == str(world.media / "usb") else real_device(path)

        monkeypatch.setattr(probes, "device_of", mounted)
        lib = await world.library(world.media / "usb")
        await world.scan(lib)
        monkeypatch.setattr(probes, "device_of", real_device)  # unplugged
        (world.media / "usb" / "a.jpg").unlink()
        make_tree(world.media, {"usb/written-while-unmounted.txt": b"x"})
        state = await world.scan(lib)
        assert state["unavailableImportPaths"] == [str(world.media / "usb")]
        assert "is no longer a mount point" in " ".join(p["problem"] for p in state["problems"])
        (asset,) = (await world.assets(lib)).values()
        assert asset["offlineReason"] == "import-path-unavailable"

    async def test_really_deleted_files_are_removed_and_unavailable_ones_kept(
        self, world: World
    ) -> None:
        make_tree(world.media, {"usb/a.jpg": None, "disk/gone.jpg": None, "disk/stay.jpg": None})
        lib = await world.library(world.media / "usb", world.media / "disk")
        await world.scan(lib)
        (world.media / "disk" / "gone.jpg").unlink()
        (world.media / "usb").rename(world.media / "drive")
        await world.scan(lib)
        removed = await ok(
            await world.system.client.post(
                f"/api/libraries/{lib}/removeOffline", headers=world.admin
            )
        )
        assert removed == {"removed": 1, "kept": 1, "keptReasons": {"import-path-unavailable": 1}}
        assert sorted(Path(p).name for p in await world.assets(lib)) == ["a.jpg", "stay.jpg"]

    async def test_a_folder_emptied_on_purpose_is_deleted(self, world: World) -> None:
        """An import path that never held files, or a folder inside one, is not a drive."""
        files = make_tree(world.media, {"lib/sub/a.jpg": None})
        lib = await world.library(world.media / "lib")
        await world.scan(lib)
        files["lib/sub/a.jpg"].unlink()
        state = await world.scan(lib)
        assert state["unavailableImportPaths"] == []
        (asset,) = (await world.assets(lib)).values()
        assert asset["offlineReason"] == "deleted"


async def album_with_everything(w: World, library_id: str) -> None:
    ids = [a["id"] for a in (await w.assets(library_id)).values()]
    await ok(
        await w.system.client.post(
            "/api/albums",
            headers=await owner(w),
            json={"albumName": "everything", "assetIds": ids},
        ),
        201,
    )


async def test_a_drive_unplugged_mid_scan_deletes_nothing(world: World) -> None:
    """A folder task meets its folder gone because the whole import path went: nothing is
    marked deleted, and the scan says what happened."""
    import uuid

    from services.scanner.handlers import Scanner
    from shared.bus import EventBus
    from shared.events import ScanMode
    from shared.work import ScanTree

    files = make_tree(world.media, {"usb/2024/a.jpg": None, "usb/b.jpg": None})
    lib = await world.library(world.media / "usb")
    await world.scan(lib)
    (world.media / "usb").rename(world.media / "away")
    (world.media / "usb").mkdir()  # an empty mount point
    scanner = Scanner(world.system.ctx.nc, await world.system.db(), world.system.settings)
    await scanner.run_dir(
        ScanTree(
            scan_id=uuid.uuid4(),
            library_id=uuid.UUID(lib),
            path=str(files["usb/2024/a.jpg"].parent),
            import_path=str(world.media / "usb"),
            mode=ScanMode.NEW,
        )
    )
    _, last = await EventBus(world.system.ctx.nc, world.system.settings.nats).last_event(
        "scans", lib
    )
    assert last is not None and "became unavailable during the scan" in last.message  # type: ignore[attr-defined]
    assert not await world.assets(lib, isOffline=True)


async def test_a_mount_point_that_is_a_dangling_symlink_is_unavailable(world: World) -> None:
    """/media/usb -> /media/mnt/disk (an automounter's link); the disk goes, the link stays."""
    make_tree(world.media, {"mnt/disk/a.jpg": None, "mnt/disk/b.jpg": None})
    (world.media / "usb").symlink_to(world.media / "mnt" / "disk")
    lib = await world.library(world.media / "usb")
    await world.scan(lib)
    (world.media / "mnt" / "disk").rename(world.media / "mnt" / "away")
    state = await world.scan(lib)
    assert state["unavailableImportPaths"] == [str(world.media / "usb")]
    problem = " ".join(p["problem"] for p in state["problems"])
    assert "does not exist" in problem and "it held 2 files" in problem
    offline = await world.assets(lib, isOffline=True)
    assert {a["offlineReason"] for a in offline.values()} == {"import-path-unavailable"}
    (world.media / "mnt" / "away").rename(world.media / "mnt" / "disk")
    await world.scan(lib)
    assert not await world.assets(lib, isOffline=True)
