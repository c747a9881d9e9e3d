"""The projector against real PostgreSQL: a batch and its checkpoint commit together or not."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from services.cli import replay
from services.projector.app import Projector
from services.projector.checkpoint import read_checkpoint
from shared import events as ev
from shared import schema
from shared.bus import EventBus
from shared.db import DEFERRED_INDEXES, create_engine, create_schema, drop_deferred_indexes
from tests.dbcompare import diff, dump
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import Infra, System, create_database, eventually, open_system


async def _count(system: object, sql: str) -> int:
    async with system.ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(text(sql))).scalar() or 0)


async def test_a_failing_batch_leaves_no_trace_and_no_checkpoint(infra: Infra, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with open_system(infra, tmp_path, projector=False) as system:
        projector = Projector(system.ctx.nc, system.ctx.engine, system.settings.nats)
        user = uuid.uuid4()
        good = [
            (1, ev.UserCreated(stream_id=user, email="a@b.c", name="a", password_hash="x")),
            (
                2,
                ev.ApiKeyCreated(
                    stream_id=user,
                    key_id=uuid.uuid4(),
                    name="k",
                    key_hash="same",
                    permissions=["all"],
                ),
            ),
        ]
        # A second key with the same hash breaks a unique index at the end of the batch.
        poison = (
            3,
            ev.ApiKeyCreated(
                stream_id=user, key_id=uuid.uuid4(), name="k2", key_hash="same", permissions=["all"]
            ),
        )
        with pytest.raises(asyncpg.PostgresError):
            await projector._commit([*good, poison], 3)
        assert await _count(system, "SELECT count(*) FROM users") == 0
        assert await _count(system, "SELECT count(*) FROM api_keys") == 0
        assert (await read_checkpoint(system.ctx.engine))[0] == 0
        await projector._commit(good, 2)
        assert await _count(system, "SELECT count(*) FROM api_keys") == 1
        assert (await read_checkpoint(system.ctx.engine))[0] == 2


async def test_a_poison_event_is_passed_over_and_the_rest_lands(infra: Infra, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with open_system(infra, tmp_path, projector=False) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        user = uuid.uuid4()
        last, _ = await bus.publish_many(
            [
                ev.UserCreated(stream_id=user, email="a@b.c", name="a", password_hash="x"),
                ev.ApiKeyCreated(
                    stream_id=user,
                    key_id=uuid.uuid4(),
                    name="k",
                    key_hash="same",
                    permissions=["all"],
                ),
                ev.ApiKeyCreated(
                    stream_id=user,
                    key_id=uuid.uuid4(),
                    name="k2",
                    key_hash="same",
                    permissions=["all"],
                ),
                ev.AlbumCreated(stream_id=uuid.uuid4(), owner_id=user, name="after"),
            ]
        )
        projector = Projector(system.ctx.nc, system.ctx.engine, system.settings.nats)
        await asyncio.wait_for(projector.run(until_seq=last), 30)
        assert await _count(system, "SELECT count(*) FROM api_keys") == 1
        assert await _count(system, "SELECT count(*) FROM albums") == 1
        assert (await read_checkpoint(system.ctx.engine))[0] == last


async def _failures(system: System) -> list[Any]:
    async with system.ctx.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT seq, subject, event_type, stream_id, error FROM projection_failures")
        )
        return list(rows.all())


class TestPassedOverEvents:
    async def test_a_user_stays_writable_when_one_of_its_events_cannot_be_stored(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "mallory@example.com")
        user_id = uuid.UUID(user["id"])
        # Straight onto the bus, past the API's checks: PostgreSQL cannot store a NUL.
        bad = ev.UserUpdated(stream_id=user_id, name="mallory\x00")
        seq = await system.ctx.bus.publish(bad)
        await system.ctx.settle(seq)

        failures = await _failures(system)
        assert [(f.seq, f.event_type, f.stream_id) for f in failures] == [
            (seq, "UserUpdated", user_id)
        ]
        assert failures[0].subject.endswith(f"events.user.{user_id}")
        # The guarded writes that used to answer 409 forever: external path, then deletion.
        body = await ok(
            await system.client.put(
                f"/api/admin/users/{user_id}", json={"externalPath": str(media_root)}, headers=admin
            )
        )
        assert body["externalPath"] == str(media_root) and body["name"] == "mallory"
        await ok(await system.client.delete(f"/api/admin/users/{user_id}", headers=admin))

    async def test_replay_records_the_same_failures(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "mallory@example.com")
        user_id = uuid.UUID(user["id"])
        await system.ctx.bus.publish(ev.UserUpdated(stream_id=user_id, name="a\x00"))
        # An event this version cannot decode, on the same user's subject.
        subject = system.ctx.bus.aggregate_subject("user", user_id)
        ack = await system.ctx.nc.jetstream().publish(subject, b'{"event":"FromTheFuture"}')
        await system.ctx.settle(ack.seq)
        await ok(
            await system.client.put(
                f"/api/admin/users/{user_id}", json={"name": "mallory"}, headers=admin
            )
        )
        assert len(await _failures(system)) == 2

        replica = await create_database(system.infra, system.settings.nats.namespace + "_r")
        await replay(system.settings, replica, show_progress=False)
        problems = diff(await dump(system.settings.db.url), await dump(replica))
        assert not problems, "\n".join(problems)


class TestDatabaseOutages:
    async def test_cut_connections_mid_projection_lose_nothing_and_pass_nothing_over(
        self, system: System
    ) -> None:
        """PostgreSQL's backends are terminated again and again while the projector applies
        a few thousand events (as in a restart): it retries them, and in the end every event is
        applied once, none is recorded as a failure, and the projector is still running."""
        bus = EventBus(system.ctx.nc, system.settings.nats)
        events = [
            ev.UserCreated(
                stream_id=uuid.uuid4(), email=f"u{i}@example.com", name=f"u{i}", password_hash="x"
            )
            for i in range(3000)
        ]
        url = system.settings.db.url.replace("+asyncpg", "")
        cut = 0
        publishing = asyncio.create_task(bus.publish_many(events))
        killer = await asyncpg.connect(url)
        try:
            while not publishing.done() or cut < 20:
                cut += 1
                await killer.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await asyncio.sleep(0.05)  # the interval between two cuts, not a wait
        finally:
            await killer.close()
        last, refused = await publishing
        assert not refused

        async def caught_up() -> bool:
            return (await read_checkpoint(system.ctx.engine))[0] >= last

        await eventually(caught_up, 60, "the projector to apply every event after the outages")
        assert await _count(system, "SELECT count(*) FROM users") == 3000
        assert await _count(system, "SELECT count(*) FROM projection_failures") == 0
        assert not system.tasks["projector"].done()


async def test_the_projector_refuses_read_models_of_another_projection_version(
    infra: Infra, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from services.projector.app import ProjectionVersionMismatch
    from shared.schema import PROJECTION_VERSION

    async with open_system(infra, tmp_path, projector=False) as system:
        async with system.ctx.engine.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(
                text(
                    "INSERT INTO projection_checkpoint (name, seq, version) "
                    "VALUES ('read_models', 7, :v)"
                ),
                {"v": PROJECTION_VERSION - 1},
            )
        projector = Projector(system.ctx.nc, system.ctx.engine, system.settings.nats)
        with pytest.raises(ProjectionVersionMismatch, match="shoebox replay"):
            await asyncio.wait_for(projector.run(), 10)
        assert (await read_checkpoint(system.ctx.engine))[0] == 7  # nothing applied


async def test_a_deleted_consumer_is_made_again_from_the_checkpoint(  # type: ignore[no-untyped-def]
    infra: Infra, tmp_path
) -> None:
    """The pull reader (services/projector/reader.py): JetStream ending its requests with an
    error (here the consumer deleted under it) makes the projector create its consumer again
    from the checkpoint, and every event still lands once, in order."""
    async with open_system(infra, tmp_path, projector=False) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        owner = uuid.uuid4()
        albums = [
            ev.AlbumCreated(stream_id=uuid.uuid4(), owner_id=owner, name=f"a{i}") for i in range(5)
        ]
        first, _ = await bus.publish_many(albums)
        projector = Projector(system.ctx.nc, system.ctx.engine, system.settings.nats)
        stop = asyncio.Event()
        running = asyncio.create_task(projector.run(stop))
        try:
            await eventually(lambda: _at(system, first), what="the first albums")
            js = system.ctx.nc.jetstream()
            stream = system.settings.nats.name("EVENTS")
            for info in await js.consumers_info(stream):
                if info.config.durable_name is None:
                    await js.delete_consumer(stream, info.name)
            last, _ = await bus.publish_many(
                [
                    ev.AlbumCreated(stream_id=uuid.uuid4(), owner_id=owner, name=f"b{i}")
                    for i in range(5)
                ]
            )
            await eventually(lambda: _at(system, last), what="the albums after the deletion")
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
        assert await _count(system, "SELECT count(*) FROM albums") == 10


async def _at(system: System, seq: int) -> bool:
    return (await read_checkpoint(system.ctx.engine))[0] >= seq


async def _indexes(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["indexname"] for r in rows}


async def test_a_replay_builds_the_indexes_it_defers_and_a_start_builds_missing_ones(  # type: ignore[no-untyped-def]
    infra: Infra, tmp_path
) -> None:
    """A full replay writes assets without their non-unique indexes and builds them at its end;
    should it stop before, the schema setup of the next start builds what is missing."""
    async with open_system(infra, tmp_path, projector=False) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        await bus.publish(ev.AlbumCreated(stream_id=uuid.uuid4(), owner_id=uuid.uuid4(), name="a"))
        expected = {i.name for t in schema.metadata.sorted_tables for i in t.indexes}
        replica = await create_database(system.infra, system.settings.nats.namespace + "_i")
        await replay(system.settings, replica, show_progress=False)
        assert expected <= await _indexes(replica)

        engine = create_engine(replica, pool=False)
        try:
            await drop_deferred_indexes(engine)  # as a replay stopped mid-way leaves them
            assert not set(DEFERRED_INDEXES) & await _indexes(replica)
            await create_schema(engine)
            await create_schema(engine)  # and again: nothing left to do
        finally:
            await engine.dispose()
        assert expected <= await _indexes(replica)
