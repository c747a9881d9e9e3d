"""The projector against real PostgreSQL: a batch and its checkpoint commit together or not."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from services.projector.app import Projector
from services.projector.checkpoint import read_checkpoint
from shared import events as ev
from shared.bus import EventBus
from tests.system import Infra, open_system


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
