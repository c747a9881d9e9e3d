"""An aggregate owns its position: every event on its subject moves its read model's `last_seq`
(decision 0022), so the API's guarded writes never answer 409 unless someone really wrote first.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from shared import events as ev
from shared.bus import EventBus
from tests.factories import backdate, jpeg_bytes, make_tree
from tests.helpers import ok
from tests.integration.conftest import World
from tests.integration.test_watcher import open_world
from tests.samples import SAMPLES, Refs
from tests.system import Infra, System, eventually, open_system

TABLES = {
    ev.Aggregate.USER: "users",
    ev.Aggregate.LIBRARY: "libraries",
    ev.Aggregate.ASSET: "assets",
    ev.Aggregate.ALBUM: "albums",
}


async def _position(system: System, aggregate: ev.Aggregate, stream_id: uuid.UUID) -> int | None:
    async with system.ctx.engine.connect() as conn:
        row = (
            await conn.execute(
                text(f"SELECT last_seq FROM {TABLES[aggregate]} WHERE id = :id"), {"id": stream_id}
            )
        ).first()
    return None if row is None else int(row.last_seq)


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(ev.EVENT_TYPES)


async def test_every_event_moves_its_aggregates_position_to_its_subjects_last(
    infra: Infra, tmp_path: Path
) -> None:
    """Each event type in turn, through the real projector: the row of the aggregate it was
    written to holds the sequence of the newest event on that subject; scan bookkeeping and
    server events move no library, user, asset or album."""
    async with open_system(infra, tmp_path) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        refs = Refs()
        checked = 0
        for kind, sample in SAMPLES.items():
            event = sample(refs)
            before = {
                a: await _position(system, a, i)
                for a, i in (
                    (ev.Aggregate.USER, refs.user),
                    (ev.Aggregate.LIBRARY, refs.library),
                    (ev.Aggregate.ASSET, refs.asset),
                    (ev.Aggregate.ALBUM, refs.album),
                )
            }
            seq = await bus.publish(event)
            await system.ctx.settle(seq)
            if event.aggregate in TABLES:
                position = await _position(system, event.aggregate, event.stream_id)
                last, _ = await bus.last_event(event.aggregate.value, event.stream_id)
                assert last == seq
                gone = kind in (ev.AssetRemoved, ev.AlbumDeleted, ev.LibraryDeleted)
                assert position == (None if gone else seq), kind.__name__
                checked += 1
            else:
                for aggregate, was in before.items():
                    now = await _position(
                        system,
                        aggregate,
                        {
                            ev.Aggregate.USER: refs.user,
                            ev.Aggregate.LIBRARY: refs.library,
                            ev.Aggregate.ASSET: refs.asset,
                            ev.Aggregate.ALBUM: refs.album,
                        }[aggregate],
                    )
                    assert now == was, f"{kind.__name__} moved the {aggregate} position"
        assert checked == sum(1 for t in SAMPLES if t.aggregate in TABLES)


async def test_an_event_the_projector_cannot_read_still_moves_the_position(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        refs = Refs()
        for kind in (ev.UserCreated, ev.LibraryCreated):
            await system.ctx.settle(await bus.publish(SAMPLES[kind](refs)))
        subject = bus.aggregate_subject("library", refs.library)
        ack = await system.ctx.nc.jetstream().publish(subject, b'{"event": "FromTheFuture"}')
        await system.ctx.settle(ack.seq)
        assert await _position(system, ev.Aggregate.LIBRARY, refs.library) == ack.seq


async def test_library_edits_answer_200_after_scans(world: World) -> None:
    """A full scan, then a scan of one folder (the watcher's kind): the library's guarded
    routes still answer 200 (they answered 409 while scan bookkeeping shared its subject)."""
    make_tree(world.media, {"trip/a.jpg": None, "trip/day/b.jpg": None})
    lib = await world.library(world.media)
    client, admin = world.system.client, world.admin
    await world.scan(lib)
    await ok(await client.put(f"/api/libraries/{lib}", json={"name": "Trip"}, headers=admin))
    await world.scan(lib, {"path": str(world.media / "trip" / "day")})
    await ok(
        await client.put(
            f"/api/libraries/{lib}", json={"exclusionPatterns": ["**/Raw/**"]}, headers=admin
        )
    )
    await world.scan(lib, {"refreshModifiedFiles": True})
    await ok(await client.delete(f"/api/libraries/{lib}", headers=admin), 204)


async def test_library_edits_answer_200_after_the_watcher_reconciles_a_folder(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_world(infra, tmp_path) as w:
        make_tree(w.media, {"old/a.jpg": None})
        backdate(w.media)  # indexed with its mtime by the catch-up scan
        lib = await w.library(w.media)
        await w.watching(lib, w.media)
        # A new file changes old/'s mtime: the watcher's reconciliation of old/ re-indexes it.
        (w.media / "old" / "late.jpg").write_bytes(jpeg_bytes())

        async def imported() -> bool:
            return any(p.endswith("late.jpg") for p in await w.assets(lib))

        await eventually(imported, 15, "the watcher to import late.jpg")
        await w.caught_up(lib)
        r = await w.system.client.put(
            f"/api/libraries/{lib}", json={"name": "Watched"}, headers=w.admin
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Watched"


async def test_a_real_concurrent_edit_answers_409(world: World) -> None:
    """Someone else wrote to the library after the read model was read: Immich's 409 shape."""
    lib = await world.library(world.media)
    bus = EventBus(world.system.ctx.nc, world.system.settings.nats)
    await world.system.stop("projector")  # the other write stays unread by the read model
    await bus.publish(ev.LibraryRenamed(stream_id=uuid.UUID(lib), name="by someone else"))
    r = await world.system.client.put(
        f"/api/libraries/{lib}", json={"name": "mine"}, headers=world.admin
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["statusCode"] == 409 and body["error"] == "Conflict"
    assert "changed by someone else" in body["message"]
