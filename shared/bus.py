"""The event bus: streams, publishing facts with optimistic concurrency, and work queues."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec
import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError, ServiceUnavailableError

from shared.events import AssetRemoved, BaseEvent, Event, decode, encode, subject_parts
from shared.infra import wait_for_port
from shared.outage import Outage, nats_down
from shared.settings import DUPLICATE_WINDOW
from shared.trace import event_headers

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from shared.settings import NatsSettings

log = logging.getLogger(__name__)

# Seconds a process's heartbeat outlives its last beat (shared/health beats every 5 s).
HEARTBEAT_TTL = 30.0

WRONG_LAST_SEQUENCE = 10071


class WrongExpectedSequence(Exception):
    """Someone else wrote to the aggregate first (JetStream's expected-last-subject-sequence)."""


def _host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return (host or "127.0.0.1"), int(port or 4222)


def _any_accepts(urls: list[str], timeout: float) -> None:
    """Block until one of the servers accepts a TCP connection (any node of a cluster will do)."""
    deadline = time.monotonic() + timeout
    while True:
        for url in urls:
            host, port = _host_port(url)
            try:
                wait_for_port(host, port, 0.0)
                return
            except TimeoutError:
                continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"no NATS server accepts after {timeout:.0f} s: {', '.join(urls)}")
        time.sleep(0.05)


async def connect(settings: NatsSettings, name: str = "shoebox") -> Client:
    """Connect to NATS once any of its servers accepts (connecting early costs nats-py a 2 s
    back-off); on a cluster nats-py then moves to another node when one goes away."""
    servers = settings.servers
    await asyncio.to_thread(_any_accepts, servers, 30.0)

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
        servers=servers,
        name=name,
        error_cb=_error,
        reconnected_cb=_reconnected,
        max_reconnect_attempts=-1,
        connect_timeout=5,
        reconnect_time_wait=0.5,
    )


def cluster_size(nc: Client) -> int:
    """How many servers the connected server says its cluster has (1 when it is alone).

    A clustered server lists the members' client URLs it knows in its INFO (`connect_urls`,
    itself included; a node that joined later comes in an update), and a lone server has no
    `cluster` there. So the larger of that list and the servers nats-py knows of (the ones
    configured plus the ones discovered) is taken."""
    info = getattr(nc, "_server_info", None) or {}
    if not info.get("cluster"):
        return 1
    urls = {u.split("://", 1)[-1] for u in info.get("connect_urls") or []}
    pool = {f"{u.hostname}:{u.port}" for u in nc.servers}
    return max(1, len(urls), len(pool))


def replicas_for(nc: Client, settings: NatsSettings) -> int:
    """Replicas of what Shoebox creates: the setting, else 3 on a cluster of 3 or more, else 1."""
    if settings.replicas:
        return min(5, settings.replicas)
    return 3 if cluster_size(nc) >= 3 else 1


async def jetstream_ready(js: JetStreamContext, timeout: float = 60.0) -> None:
    """Wait until JetStream answers: a cluster that just started elects its meta leader
    first (seconds), and a service started with it must not fail for that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await js.account_info()
            return
        except (NoRespondersError, NatsTimeoutError, TimeoutError, ServiceUnavailableError) as e:
            if loop.time() > deadline:
                raise
            log.info("jetstream not answering yet (%s); waiting", type(e).__name__)
        except APIError as e:
            if loop.time() > deadline or e.code != 503:
                raise
            log.info("jetstream not ready yet (%s); waiting", e.description)
        await asyncio.sleep(0.25)  # between attempts to reach a cluster still electing


async def ensure_streams(nc: Client, settings: NatsSettings) -> None:
    """Create the EVENTS and WORK streams and the KV / object buckets (idempotent), with
    `replicas_for` replicas.

    What exists already is left as its operator made it (replicas, limits, placement): only
    what Shoebox cannot work without (its subjects, direct gets on EVENTS) is added to it."""
    js = nc.jetstream()
    await jetstream_ready(js)
    replicas = replicas_for(nc, settings)
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
        num_replicas=replicas,
    )
    work = api.StreamConfig(
        name=settings.name("WORK"),
        subjects=[settings.subject("work", ">")],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.WORK_QUEUE,
        duplicate_window=DUPLICATE_WINDOW,
        num_replicas=replicas,
    )
    for cfg in (events, work):
        await _ensure_stream(js, cfg)
    # scan-tasks: one key per folder task of a scan, so it is counted once (shared/scanprogress);
    # kept a week, longer than any scan. heartbeats: one key per running process (shared/health).
    buckets = (
        ("leases", 60.0),
        ("scans", 0.0),
        ("scan-tasks", 7 * 86400.0),
        ("heartbeats", HEARTBEAT_TTL),
    )
    for bucket, ttl in buckets:
        try:
            await js.key_value(settings.name(bucket))
        except (NotFoundError, KeyNotFoundError, APIError):
            await js.create_key_value(
                api.KeyValueConfig(
                    bucket=settings.name(bucket), ttl=ttl or None, history=1, replicas=replicas
                )
            )
    try:
        await js.object_store(settings.name("thumbs"))
    except (NotFoundError, APIError):
        await js.create_object_store(
            settings.name("thumbs"), config=api.ObjectStoreConfig(replicas=replicas)
        )


async def _ensure_stream(js: JetStreamContext, cfg: api.StreamConfig) -> None:
    """Create a stream, or add to an existing one only what Shoebox needs of it."""
    assert cfg.name is not None
    try:
        existing = (await js.stream_info(cfg.name)).config
    except NotFoundError:
        try:
            await js.add_stream(cfg)
            return
        except APIError as e:
            if e.err_code != 10058:  # created meanwhile by another replica
                raise
            existing = (await js.stream_info(cfg.name)).config
    subjects = list(existing.subjects or [])
    missing = [s for s in cfg.subjects or [] if s not in subjects]
    needs_direct = bool(cfg.allow_direct) and not existing.allow_direct
    if (existing.num_replicas or 1) < (cfg.num_replicas or 1):
        log.warning(
            "stream %s has %d replica(s) where Shoebox would make %d; left as it is",
            cfg.name,
            existing.num_replicas or 1,
            cfg.num_replicas,
        )
    if not missing and not needs_direct:
        return
    existing.subjects = subjects + missing
    existing.allow_direct = existing.allow_direct or needs_direct
    await js.update_stream(existing)


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
        headers = {"Nats-Msg-Id": str(event.event_id), **event_headers()}
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

    async def publish_new(self, event: BaseEvent) -> int | None:
        """Record the first event of an aggregate (expected sequence 0); None when the aggregate
        exists already (a replica's duplicate, an upload already there) — unless it was
        removed: see `revive`."""
        try:
            return await self.publish(event, expected_last_seq=0)
        except WrongExpectedSequence:
            return await self.revive(event)

    async def revive(self, event: BaseEvent) -> int | None:
        """`event` was refused because its aggregate exists. When the aggregate's newest event
        is AssetRemoved, the removed asset starts a new life under the same id (a file found
        again, an upload made again): the event is recorded after the removal. None otherwise,
        or when someone else revived it at the same instant (theirs is the asset)."""
        seq, last = await self.last_event(event.aggregate.value, event.stream_id)
        if not isinstance(last, AssetRemoved):
            return None
        try:
            return await self.publish(
                msgspec.structs.replace(event, event_id=uuid.uuid4()), expected_last_seq=seq
            )
        except WrongExpectedSequence:
            return None

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
