"""The nightly job: a modified scan of every library, stuck deletions finished, one replica."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from services.scanner.handlers import Scanner
from services.scanner.nightly import nightly_once
from shared import events as ev
from shared.bus import EventBus
from tests.factories import make_tree
from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import System, eventually, run_metadata


async def test_nightly_scans_every_library_and_finishes_stuck_deletions(
    system: System, media_root: Path
) -> None:
    admin = await sign_up_admin(system)
    user, _ = await create_user(system, admin, "u@example.com", str(media_root))
    make_tree(media_root, {"one/a.jpg": None, "two/b.jpg": None})
    one = await external_library(system, admin, user["id"], [str(media_root / "one")])
    two = await external_library(system, admin, user["id"], [str(media_root / "two")])
    # A deletion that was started and never finished (its worker crashed): only the start
    # event is recorded, nobody finished it.
    bus = EventBus(system.ctx.nc, system.settings.nats)
    await system.ctx.settle(
        await bus.publish(ev.LibraryDeletionStarted(stream_id=uuid.UUID(two["id"])))
    )

    # The nightly job asks the renditions' owner (the metadata service) to finish it.
    await system.start("metadata", run_metadata)
    scanner = Scanner(system.ctx.nc, await system.db(), system.settings)
    assert await nightly_once(scanner, "20260101T0000") is True
    # A second replica waking for the same cron time does nothing.
    assert await nightly_once(scanner, "20260101T0000") is False

    async def settled() -> bool:
        async with system.ctx.engine.connect() as conn:
            runs = (
                await conn.execute(text("SELECT library_id, mode, requested_by FROM scan_runs"))
            ).all()
            libs = (
                await conn.execute(
                    text("SELECT id FROM libraries WHERE id = :id"), {"id": two["id"]}
                )
            ).all()
        return [(str(r.library_id), r.mode, r.requested_by) for r in runs] == [
            (one["id"], "modified", "nightly")
        ] and not libs

    await eventually(settled, 20, "a nightly modified scan of library one and library two gone")
    listed = await ok(await system.client.get("/api/libraries", headers=admin))
    assert two["id"] not in [x["id"] for x in listed]
