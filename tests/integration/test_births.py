"""A folder's new files are one event on the folder's subject, guarded by its position
(decision 0030): two replicas planning the same folder record its files once, a big folder is
recorded in parts each after the last, and the read model holds each folder's position."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import text

from services.scanner.crawl import Seen
from services.scanner.decide import Planned, ScanContext, plan_dir
from services.scanner.publish import BirthsRefused, publish_births, publish_planned
from services.scanner.repository import ScanRepository
from shared import events as ev
from shared.bus import EventBus
from shared.ids import external_asset_id, folder_id
from tests.integration.conftest import World

MS = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)


def _plan(library: uuid.UUID, owner: uuid.UUID, folder: str, names: list[str]) -> list[Planned]:
    ctx = ScanContext(uuid.uuid4(), library, owner, ev.ScanMode.NEW)
    seen = [Seen(f"{folder}/{n}", "IMAGE", MS, 1) for n in names]
    return plan_dir(ctx, {}, [s.path for s in seen], seen, set())


async def _births(world: World, library: uuid.UUID, folder: str) -> list[ev.FilesDiscovered]:
    bus = EventBus(world.system.ctx.nc, world.system.settings.nats)
    out: list[ev.FilesDiscovered] = []
    seq = 0
    subject = bus.aggregate_subject("folder", folder_id(library, folder))
    js = world.system.ctx.nc.jetstream()
    stream = world.system.settings.nats.name("EVENTS")
    while True:
        try:
            msg = await js.get_msg(stream, seq=seq + 1, subject=subject, next=True)
        except NotFoundError:  # no message after seq on the subject
            return out
        seq = int(msg.seq or 0)
        event = ev.decode(msg.data or b"")
        assert isinstance(event, ev.FilesDiscovered)
        out.append(event)


class Side(NamedTuple):
    """A library to plan births in, and what a scanner publishes them with."""

    library: uuid.UUID
    owner: uuid.UUID
    repo: ScanRepository
    bus: EventBus


async def _side(world: World) -> Side:
    lib = uuid.UUID(await world.library(world.media))
    return Side(
        lib,
        uuid.UUID(world.user["id"]),
        ScanRepository(await world.system.db()),
        EventBus(world.system.ctx.nc, world.system.settings.nats),
    )


async def test_two_replicas_planning_one_folder_record_its_files_once(world: World) -> None:
    library, owner, repo, bus = await _side(world)
    folder = str(world.media.resolve() / "card")
    names = [f"IMG_{i:03d}.jpg" for i in range(40)]
    # Both read the folder's position (0), then its assets (none), before either published: a
    # task redelivered while its first delivery still works, or the watcher and a scan at once.
    at = [await repo.folder_positions(library, [folder]) for _ in range(2)]
    first, second = _plan(library, owner, folder, names), _plan(library, owner, folder, names)
    results = await asyncio.gather(
        publish_planned(bus, first, positions=at[0]),
        publish_planned(bus, second, positions=at[1]),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BirthsRefused)]
    assert len(refused) == 1 and results.count(None) == 1, results
    births = await _births(world, library, folder)
    assert [len(b.files) for b in births] == [40]


async def test_a_big_folder_is_recorded_in_parts_and_positioned(world: World) -> None:
    library, owner, repo, bus = await _side(world)
    folder = str(world.media.resolve() / "big")
    names = [f"IMG_{i:03d}.jpg" for i in range(7)]
    at = await repo.folder_positions(library, [folder])
    await publish_planned(bus, _plan(library, owner, folder, names), 3, at)
    births = await _births(world, library, folder)
    assert [len(b.files) for b in births] == [3, 3, 1]
    assert len({b.event_id for b in births}) == 3
    # The read model gets every file, and the folder's position is its newest part's.
    await world.system.ctx.settle(await world.last_seq())
    async with world.system.ctx.engine.connect() as conn:
        ids = (
            (await conn.execute(text("SELECT id FROM assets WHERE dir = :d"), {"d": folder}))
            .scalars()
            .all()
        )
        position = (
            await conn.execute(
                text("SELECT last_seq FROM folders WHERE id = :id"),
                {"id": folder_id(library, folder)},
            )
        ).scalar()
        asset_seqs = set(
            (await conn.execute(text("SELECT last_seq FROM assets WHERE dir = :d"), {"d": folder}))
            .scalars()
            .all()
        )
    assert set(ids) == {external_asset_id(library, f"{folder}/{n}") for n in names}
    assert position == (await repo.folder_positions(library, [folder]))[folder] > 0
    assert asset_seqs == {0}  # nothing on the assets' own subjects yet
    # Births planned with no position read first are refused outright.
    with pytest.raises(ValueError, match="without their folder's position"):
        await publish_planned(bus, _plan(library, owner, folder, ["y.jpg"]))
    # A planner that read the position before the last part is refused.
    ((late, _),) = _plan(library, owner, folder, ["x.jpg"])
    assert isinstance(late, ev.FilesDiscovered)
    with pytest.raises(BirthsRefused):
        await publish_births(bus, late, position - 1)
    await publish_births(bus, late, position)
