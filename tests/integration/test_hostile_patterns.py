"""A library whose exclusion patterns backtrack cannot stall scans: its own or anyone's."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from services.api.commands import publish_chain
from shared import events as ev
from tests.factories import make_tree
from tests.helpers import assets_of, create_user, external_library, scan, sign_up_admin
from tests.system import System, run_scanner
from tests.unit.test_glob_bounds import HOSTILE, WORST_ACCEPTED


async def _stored_library(system: System, owner: dict[str, Any], path: Path) -> str:
    """A library whose patterns the API would refuse now (recorded before its bounds)."""
    library_id = uuid.uuid4()
    created = ev.LibraryCreated(
        stream_id=library_id,
        owner_id=uuid.UUID(owner["id"]),
        name="hostile",
        type="EXTERNAL",
        import_paths=[str(path)],
        exclusion_patterns=[HOSTILE, *WORST_ACCEPTED],
    )
    await system.ctx.settle(await publish_chain(system.ctx, [created], expected=0))
    return str(library_id)


async def test_slow_patterns_skip_their_folder_and_other_libraries_scan_meanwhile(
    system: System, media_root: Path
) -> None:
    await system.start("scanner", run_scanner)
    admin = await sign_up_admin(system)
    owner, _ = await create_user(system, admin, "owner@example.com", str(media_root))
    make_tree(media_root / "hostile", {"a" * 240 + ".jpg": None, "sub/b.jpg": None})
    fine_files = make_tree(media_root / "fine", {f"{i}.jpg": None for i in range(3)})
    hostile = await _stored_library(system, owner, media_root / "hostile")
    fine = (await external_library(system, admin, owner["id"], [str(media_root / "fine")]))["id"]
    bad, good = await asyncio.gather(scan(system, admin, hostile), scan(system, admin, fine))
    assert good["state"] == "finished" and not good["problems"]
    assert sorted(a["originalPath"] for a in await assets_of(system, admin, fine)) == sorted(
        str(p) for p in fine_files.values()
    )
    assert [p["path"] for p in bad["problems"]] == [str(media_root / "hostile")]
    assert "exclusion patterns took more than" in bad["problems"][0]["problem"]
    assert await assets_of(system, admin, hostile) == []
