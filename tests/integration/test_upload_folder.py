"""The upload folder is never part of an external library, whatever the external path holds."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from watchdog.events import DirCreatedEvent, FileCreatedEvent

from services.api.commands import publish_chain
from services.watcher.observer import ImportPathHandler
from shared import events as ev
from shared.globs import ExclusionMatcher
from shared.ids import external_asset_id
from tests.api.assets import photo, uploaded
from tests.factories import make_tree
from tests.helpers import assets_of, create_user, external_library, ok, scan, sign_up_admin
from tests.system import Infra, System, open_system, run_scanner
from tests.unit.test_glob_bounds import WORST_ACCEPTED


class Tenants:
    """A victim with a real upload, and an intruder whose external path is the data folder."""

    def __init__(
        self,
        system: System,
        admin: dict[str, str],
        intruder: dict[str, Any],
        intruder_headers: dict[str, str],
        upload: Path,
    ) -> None:
        self.system, self.admin = system, admin
        self.intruder, self.intruder_headers = intruder, intruder_headers
        self.upload = upload  # the victim's uploaded file, where the API stored it
        self.data = Path(system.settings.data_dir)


@pytest.fixture
async def tenants(infra: Infra, tmp_path: Path) -> AsyncIterator[Tenants]:
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        admin = await sign_up_admin(system)
        _victim, victim_headers = await create_user(system, admin, "victim@example.com")
        await uploaded(system, victim_headers, photo(1), "private.jpg")
        upload_root = system.settings.upload_path
        (upload,) = [
            Path(d, f) for d, _, files in os.walk(upload_root) for f in files if f.endswith(".jpg")
        ]
        data = Path(system.settings.data_dir)
        assert upload_root.is_relative_to(data)
        intruder, headers = await create_user(system, admin, "intruder@example.com", str(data))
        yield Tenants(system, admin, intruder, headers, upload)


async def _create(t: Tenants, paths: list[str]) -> Any:
    return await t.system.client.post(
        "/api/libraries",
        headers=t.intruder_headers,
        json={"ownerId": t.intruder["id"], "importPaths": paths},
    )


class TestApi:
    async def test_create_refuses_the_upload_folder_and_anything_inside_it(
        self, tenants: Tenants
    ) -> None:
        upload_root = tenants.system.settings.upload_path
        for path in (upload_root, tenants.upload.parent, upload_root / "not-yet-there"):
            r = await _create(tenants, [str(path)])
            assert r.status_code == 400, r.text
            assert r.json()["message"] == (
                "Invalid import path: Cannot use media upload folder for external libraries"
            )
        mine = await ok(
            await tenants.system.client.get("/api/libraries", headers=tenants.intruder_headers)
        )
        assert [lib["type"] for lib in mine] == ["UPLOAD"]


class TestScanner:
    async def test_scan_skips_the_upload_folder_inside_an_import_path(
        self, tenants: Tenants
    ) -> None:
        t = tenants
        mine = make_tree(t.data / "mine", {"a.jpg": None})
        (t.data / "mine" / "link.jpg").symlink_to(t.upload)
        (t.data / "mine" / "uploads").symlink_to(t.system.settings.upload_path)
        lib = await external_library(t.system, t.intruder_headers, t.intruder["id"], [str(t.data)])
        state = await scan(t.system, t.intruder_headers, lib["id"])
        assets = await assets_of(t.system, t.admin, lib["id"])
        assert [a["originalPath"] for a in assets] == [str(mine["a.jpg"])]
        skipped = {
            Path(p["path"]).name for p in state["problems"] if "upload folder" in p["problem"]
        }
        assert skipped == {"upload", "link.jpg", "uploads"}

    async def test_import_path_inside_the_upload_folder_recorded_earlier_is_not_scanned(
        self, tenants: Tenants
    ) -> None:
        """A library created before the API refused such paths (or by a replayed event)."""
        t = tenants
        library_id = uuid.uuid4()
        created = ev.LibraryCreated(
            stream_id=library_id,
            owner_id=uuid.UUID(t.intruder["id"]),
            name="old",
            type="EXTERNAL",
            import_paths=[str(t.system.settings.upload_path)],
            exclusion_patterns=[],
        )
        await t.system.ctx.settle(await publish_chain(t.system.ctx, [created], expected=0))
        state = await scan(t.system, t.intruder_headers, str(library_id))
        assert state["unavailableImportPaths"] == [str(t.system.settings.upload_path)]
        assert "upload folder" in state["problems"][0]["problem"]
        assert await assets_of(t.system, t.admin, str(library_id)) == []


async def test_upload_imported_before_the_fix_cannot_be_downloaded(tenants: Tenants) -> None:
    """What a scan of the data folder recorded before the scanner skipped the upload folder."""
    t = tenants
    lib = await external_library(t.system, t.intruder_headers, t.intruder["id"], [str(t.data)])
    library_id = uuid.UUID(lib["id"])
    asset_id = external_asset_id(library_id, str(t.upload))
    found = ev.FileDiscovered(
        stream_id=asset_id,
        library_id=library_id,
        owner_id=uuid.UUID(t.intruder["id"]),
        path=str(t.upload),
        type="IMAGE",
        file_modified_at=datetime.now(UTC),
        file_size=t.upload.stat().st_size,
    )
    await t.system.ctx.settle(await publish_chain(t.system.ctx, [found], expected=0))
    r = await t.system.client.get(f"/api/assets/{asset_id}/original", headers=t.intruder_headers)
    assert r.status_code == 403, r.status_code
    assert "upload folder" in r.json()["message"]
    assert r.content != t.upload.read_bytes()


class TestWatcher:
    def handler(self, root: Path, upload: Path, patterns: list[str]) -> ImportPathHandler:
        return ImportPathHandler(
            uuid.uuid4(),
            str(root),
            ExclusionMatcher(patterns),
            native=True,
            sink=lambda t: None,
            excluded_roots=(str(upload),),
        )

    def test_changes_in_the_upload_folder_ask_the_scanner_for_nothing(self, tmp_path: Path) -> None:
        files = make_tree(tmp_path / "data", {"upload/u/x.jpg": None, "mine/a.jpg": None})
        h = self.handler(tmp_path / "data", tmp_path / "data" / "upload", [])
        assert h.touches(FileCreatedEvent(str(files["upload/u/x.jpg"]))) == []
        assert h.touches(DirCreatedEvent(str(tmp_path / "data" / "upload" / "u"))) == []
        (mine,) = h.touches(FileCreatedEvent(str(files["mine/a.jpg"])))
        assert mine.file == str(files["mine/a.jpg"])

    def test_patterns_too_slow_to_match_leave_the_decision_to_the_scanner(
        self, tmp_path: Path
    ) -> None:
        name = "a" * 240 + ".jpg"
        files = make_tree(tmp_path / "lib", {name: None})
        h = self.handler(tmp_path / "lib", tmp_path / "upload", WORST_ACCEPTED[:1])
        (touch,) = h.touches(FileCreatedEvent(str(files[name])))
        assert touch.file == str(files[name])
