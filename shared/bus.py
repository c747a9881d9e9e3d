"""The event bus: streams, publishing facts with optimistic concurrency, and work queues."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import nats
from nats.js import api
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError

from shared.events import BaseEvent, Event, decode, encode, subject_parts
from shared.infra import wait_for_port
from shared.outage import Outage, nats_down
from shared.settings import DUPLICATE_WINDOW

if TYPE_CHECKING:
    import uuid

    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from shared.settings import NatsSettings

log = logging.getLogger(__name__)

WRONG_LAST_SEQUENCE = 10071


class WrongExpectedSequence(Exception):
    """Someone else wrote to the aggregate first (JetStream's expected-last-subject-sequence)."""


def _host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return (host or "127.0.0.1"), int(port or 4222)


async def connect(settings: NatsSettings, name: str = "shoebox") -> Client:
    """Connect to NATS once it accepts (connecting early costs nats-py a 2 s back-off)."""
    host, port = _host_port(settings.url.split(",")[0])
    await asyncio.to_thread(wait_for_port, host, port, 30.0)

    outage = Outage(log, f"nats ({name})")

    async def _error(e: Exception) -> None:
        # A lost connection and each reconnect attempt: one WARNING until it is back.
        if isinstance(e, OSError) or nats_down(e):
            outage.failed("NATS", e, "the connection")
        else:
            log.warning("nats: %s", e)

    async def _reconnected() -> None:
        outage.recovered()

    return await nats.connect(
        settings.url,
        name=name,
        error_cb=_error,
        reconnected_cb=_reconnected,
        max_reconnect_attempts=-1,
        connect_timeout=5,
    )


async def ensure_streams(js: JetStreamContext, settings: NatsSettings) -> None:
    """Create the EVENTS and WORK streams and the KV / object buckets (idempotent)."""
    events = api.StreamConfig(
        name=settings.name("EVENTS"),
        subjects=[settings.subject("events", ">")],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        max_msgs=-1,
        max_bytes=-1,
        max_age=0,
        duplicate_window=DUPLICATE_WINDOW,
        allow_direct=True,
    )
    work = api.StreamConfig(
        name=settings.name("WORK"),
        subjects=[settings.subject("work", ">")],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.WORK_QUEUE,
        duplicate_window=DUPLICATE_WINDOW,
    )
    for cfg in (events, work):
        try:
            await js.add_stream(cfg)
        except APIError as e:
            if e.err_code != 10058:  # stream name already in use with a different config
                raise
            await js.update_stream(cfg)
    # scan-tasks: one key per folder task of a scan, so it is counted once (shared/scanprogress);
    # kept a week, longer than any scan.
    for bucket, ttl in (("leases", 60.0), ("scans", 0.0), ("scan-tasks", 7 * 86400.0)):
        try:
            await js.key_value(settings.name(bucket))
        except (NotFoundError, KeyNotFoundError, APIError):
            await js.create_key_value(
                api.KeyValueConfig(bucket=settings.name(bucket), ttl=ttl or None, history=1)
            )
    try:
        await js.object_store(settings.name("thumbs"))
    except (NotFoundError, APIError):
        await js.create_object_store(settings.name("thumbs"))


class EventBus:
    """Publishes events to the EVENTS stream and reads an aggregate's position in it."""

    def __init__(self, nc: Client, settings: NatsSettings) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.settings = settings
        self.stream = settings.name("EVENTS")

    def subject_of(self, event: BaseEvent) -> str:
        return self.settings.subject(*subject_parts(event))

    def aggregate_subject(self, aggregate: str, stream_id: uuid.UUID | str) -> str:
        return self.settings.subject("events", aggregate, str(stream_id))

    async def publish(self, event: BaseEvent, *, expected_last_seq: int | None = None) -> int:
        """Append one event; returns its stream sequence. Retried publishes are de-duplicated
        by Nats-Msg-Id. With expected_last_seq, raises WrongExpectedSequence on a conflict."""
        headers = {"Nats-Msg-Id": str(event.event_id)}
        if expected_last_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
        try:
            ack = await self.js.publish(
                self.subject_of(event), encode(event), stream=self.stream, headers=headers
            )
        except APIError as e:
            if e.err_code == WRONG_LAST_SEQUENCE:
                raise WrongExpectedSequence(str(e.description)) from e
            raise
        return int(ack.seq)

    async def publish_many(
        self, events: Iterable[BaseEvent | tuple[BaseEvent, int | None]]
    ) -> tuple[int, list[BaseEvent]]:
        """Append many events, 256 in flight at a time, each optionally with its aggregate's
        expected last sequence. Returns (last sequence written, the events refused by their
        expectation).

        Awaited publishes rather than nats-py's publish_async: with publish_async a refused
        expectation never resolves its future (nats.py issue 985), which would hang the caller.
        """
        last = 0
        conflicts: list[BaseEvent] = []
        chunk: list[tuple[BaseEvent, int | None]] = []

        async def _one(event: BaseEvent, expected: int | None) -> int | None:
            try:
                return await self.publish(event, expected_last_seq=expected)
            except WrongExpectedSequence:
                conflicts.append(event)
                return None

        async def _flush() -> None:
            nonlocal last
            for seq in await asyncio.gather(*(_one(e, x) for e, x in chunk)):
                if seq is not None:
                    last = max(last, seq)
            chunk.clear()

        for item in events:
            chunk.append(item if isinstance(item, tuple) else (item, None))
            if len(chunk) >= 256:
                await _flush()
        if chunk:
            await _flush()
        return last, conflicts

    async def last_event(
        self, aggregate: str, stream_id: uuid.UUID | str
    ) -> tuple[int, Event | None]:
        """(sequence, event) of the newest event of an aggregate, or (0, None)."""
        try:
            msg = await self.js.get_last_msg(
                self.stream, self.aggregate_subject(aggregate, stream_id)
            )
        except NotFoundError:
            return 0, None
        return int(msg.seq or 0), decode(msg.data or b"")

    async def last_seq(self) -> int:
        """The EVENTS stream's last sequence."""
        info = await self.js.stream_info(self.stream)
        return int(info.state.last_seq)
