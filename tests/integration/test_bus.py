"""The bus against a real JetStream: de-duplication and expected-sequence conflicts."""

from __future__ import annotations

import asyncio
import uuid

from shared import events as ev
from shared.bus import EventBus, WrongExpectedSequence
from tests.system import System


async def test_conflicting_expectations_are_reported_not_hung(system: System) -> None:
    bus = EventBus(system.ctx.nc, system.settings.nats)
    ids = [uuid.uuid4() for _ in range(5)]
    first = [(ev.AlbumCreated(stream_id=i, owner_id=i, name="a"), 0) for i in ids]
    last, conflicts = await asyncio.wait_for(bus.publish_many(first), 10)
    assert last > 0 and conflicts == []
    again = [(ev.AlbumCreated(stream_id=i, owner_id=i, name="b"), 0) for i in ids]
    _, conflicts = await asyncio.wait_for(bus.publish_many(again), 10)
    assert sorted(c.stream_id for c in conflicts) == sorted(ids)


async def test_retried_publish_is_deduplicated(system: System) -> None:
    bus = EventBus(system.ctx.nc, system.settings.nats)
    event = ev.AlbumCreated(stream_id=uuid.uuid4(), owner_id=uuid.uuid4(), name="x")
    assert await bus.publish(event) == await bus.publish(event)
    _seq, last = await bus.last_event("album", event.stream_id)
    assert last == event


async def test_expected_sequence_guards_an_aggregate(system: System) -> None:
    bus = EventBus(system.ctx.nc, system.settings.nats)
    album = uuid.uuid4()
    seq = await bus.publish(
        ev.AlbumCreated(stream_id=album, owner_id=album, name="x"), expected_last_seq=0
    )
    await bus.publish(ev.AlbumUpdated(stream_id=album, name="y"), expected_last_seq=seq)
    try:
        await bus.publish(ev.AlbumUpdated(stream_id=album, name="z"), expected_last_seq=seq)
    except WrongExpectedSequence:
        pass
    else:
        raise AssertionError("a stale expected sequence was accepted")
