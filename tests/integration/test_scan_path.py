"""Scanning one folder (or one file's folder) of a library: nothing outside it changes."""

from __future__ import annotations

from pathlib import Path

from tests.factories import make_tree
from tests.integration.conftest import World


class TestScanOneFolder:
    async def test_only_the_folder_asked_for_is_scanned(self, world: World) -> None:
        make_tree(world.media, {"lib/a/one.jpg": None, "lib/b/two.jpg": None})
        lib = await world.library(world.media / "lib")
        await world.scan(lib)
        new = make_tree(world.media, {"lib/a/deep/new.jpg": None, "lib/b/new.jpg": None})
        (world.media / "lib" / "b" / "two.jpg").unlink()
        state = await world.scan(lib, {"path": str(world.media / "lib" / "a")})
        assert state["new"] == 1
        assets = await world.assets(lib)
        assert str(new["lib/a/deep/new.jpg"]) in assets
        assert str(new["lib/b/new.jpg"]) not in assets  # another folder: left for a full scan
        assert not await world.assets(lib, isOffline=True)  # b/two.jpg's absence not looked at

    async def test_a_file_scans_its_folder_only(self, world: World) -> None:
        make_tree(world.media, {"lib/a/one.jpg": None})
        lib = await world.library(world.media / "lib")
        await world.scan(lib)
        new = make_tree(world.media, {"lib/a/two.jpg": None, "lib/a/sub/three.jpg": None})
        state = await world.scan(
            lib, {"path": str(new["lib/a/two.jpg"]), "refreshModifiedFiles": True}
        )
        assert state["new"] == 1
        names = sorted(Path(p).name for p in await world.assets(lib))
        assert names == ["one.jpg", "two.jpg"]

    async def test_a_path_outside_the_import_paths_is_refused(
        self, world: World, tmp_path: Path
    ) -> None:
        make_tree(world.media, {"lib/a.jpg": None, "other/b.jpg": None})
        make_tree(tmp_path / "outside", {"c.jpg": None})
        (world.media / "lib" / "escape").symlink_to(tmp_path / "outside")
        lib = await world.library(world.media / "lib")
        cases = {
            str(world.media / "other"): "not inside any of the library's import paths",
            "lib/a.jpg": "must be absolute",
            str(world.media / "lib" / "missing"): "does not exist",
            str(world.media / "lib" / "escape"): "outside the user's external path",
            str(world.media / "lib" / ".." / "other"): "not inside any",
        }
        for path, message in cases.items():
            r = await world.system.client.post(
                f"/api/libraries/{lib}/scan", headers=world.admin, json={"path": path}
            )
            assert r.status_code == 400, path
            assert message in r.json()["message"], (path, r.json())
        assert not await world.assets(lib)
