"""Composition root of the scanner: faststream subscribers on library events and scan work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field

import msgspec
from faststream import AckPolicy, FastStream
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from faststream.nats.subscriber.usecases.stream_pull_subscriber import PullStreamSubscriber
from nats.errors import Error as NatsError

from services.scanner.handlers import Scanner
from services.scanner.moves import AlbumMoves
from services.scanner.nightly import run_nightly
from services.scanner.rules import counted
from shared import events as ev
from shared import trace
from shared.bus import connect, ensure_streams
from shared.checkpoint import follow_checkpoint
from shared.db import create_engine
from shared.health import Health, beat, consumer_check, database_check, nats_check
from shared.outage import Outage, unavailable
from shared.settings import Settings
from shared.work import decode_task

log = logging.getLogger(__name__)

FINISH_PATIENCE = 300.0  # seconds the last task of a scan keeps trying to record its end


@dataclass
class Holder:
    scanner: Scanner | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    outage: Outage = field(default_factory=lambda: Outage(log, "scanner"))

    @property
    def s(self) -> Scanner:
        assert self.scanner is not None, "scanner not started"
        return self.scanner


def build_app(
    settings: Settings, *, nightly: bool = True, health: Health | None = None
) -> FastStream:
    """The scanner process: N replicas share its durable consumers (library events, scan work,
    and asset events for moves that keep their albums)."""
    nats = settings.nats
    # log_level is the level faststream logs each message at: keep it below the default.
    broker = NatsBroker(nats.servers, log_level=logging.DEBUG, logger=log)
    app = FastStream(broker, logger=log)
    holder = Holder()
    health = health or Health("scanner")

    @app.on_startup
    async def _start() -> None:
        nc = await connect(nats, "scanner")
        await ensure_streams(nc, nats)
        holder.scanner = scanner = Scanner(nc, create_engine(settings.db.url), settings)
        health.add("nats", nats_check(nc))
        health.add("postgres", database_check(scanner.engine))
        health.add("consumer", consumer_check(nc, nats.name("WORK"), nats.name("scanner-dirs")))
        holder.tasks.append(asyncio.create_task(beat(nc, nats, health, holder.stop)))
        waiter = await follow_checkpoint(nc, nats, scanner.engine)
        moves = AlbumMoves(scanner.engine, scanner.bus, waiter, nats)
        holder.tasks.append(asyncio.create_task(moves.run(holder.stop)))
        if nightly:
            holder.tasks.append(asyncio.create_task(run_nightly(holder.s)))

    @app.after_shutdown
    async def _stop() -> None:
        # Set before cancelling: nats-py's fetch can turn a cancellation into a timeout, and the
        # moves consumer then ends at its next look at `stop` (within a second).
        holder.stop.set()
        for task in holder.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if holder.scanner is not None:
            await holder.scanner.nc.drain()
            await holder.scanner.engine.dispose()

    def library_events(aggregate: str, durable: str) -> PullStreamSubscriber:
        return broker.subscriber(
            nats.subject("events", aggregate, ">"),
            stream=JStream(name=nats.name("EVENTS"), declare=False),
            durable=nats.name(durable),
            pull_sub=PullSub(batch_size=1, timeout=1.0),
            config=ConsumerConfig(ack_wait=settings.scan.work_ack_wait, max_ack_pending=100),
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )

    # Scan requests are on `events.scans.<library>` (decision 0022); a stream written before
    # that holds them on the library's subject, which is still followed for them and for
    # deletions.
    @library_events("scans", "scanner-scans")
    @library_events("library", "scanner-library")
    async def on_library_event(msg: NatsMessage) -> None:
        try:
            event = ev.decode(msg.body)
        except msgspec.ValidationError:
            log.error("scanner: undecodable library event %s; rejected", msg.raw_message.subject)
            await msg.reject()
            return
        if isinstance(event, ev.LibraryScanRequested):
            # The scan's events are the scan's doing, under the request's correlation id.
            cid = (msg.raw_message.headers or {}).get(trace.CORRELATION_HEADER)
            with trace.acting(f"scan {event.scan_id}", cid):
                await holder.s.start_scan(event)
        elif isinstance(event, ev.LibraryDeletionStarted):
            await holder.s.finish_deletion(event.stream_id)

    @broker.subscriber(
        nats.subject("work", "scan", ">"),
        stream=JStream(name=nats.name("WORK"), declare=False),
        durable=nats.name("scanner-dirs"),
        pull_sub=PullSub(batch_size=4, timeout=1.0),
        # A replica that dies mid-folder leaves its task unacked; after ack_wait another
        # replica (or the restarted one) gets it. Long folders send in-progress acks.
        config=ConsumerConfig(ack_wait=settings.scan.work_ack_wait, max_ack_pending=1000),
        ack_policy=AckPolicy.MANUAL,
        max_workers=4,
    )
    async def on_dir_task(msg: NatsMessage) -> None:
        try:
            task = decode_task(msg.body)
        except msgspec.DecodeError:  # not JSON, or no task (ValidationError is one)
            log.error("scanner: undecodable work item; rejected")
            await msg.reject()
            return
        doing = f"scan {task.scan_id} library {task.library_id}: folder {task.path}"
        try:
            with trace.acting(f"{'scan' if counted(task) else 'watcher'} {task.scan_id}"):
                await holder.s.run_dir(task, keepalive=msg.in_progress)
        except Exception as e:
            # Infrastructure trouble (database, NATS): another attempt does it. An outage is
            # logged once; anything else is a fault, with its traceback.
            _failed(holder, e, doing)
            with contextlib.suppress(NatsError, TimeoutError):  # else it comes back at ack_wait
                await msg.nack(delay=2)
            return
        try:
            await msg.raw_message.ack_sync()  # gone from the WORK stream before we count
        except Exception as e:
            # The ack may have reached the stream all the same (its answer was lost while a
            # leader was elected): look at the backlog below either way. If it did not, the
            # task comes back, adds nothing (counted once) and ends the scan then.
            _failed(holder, e, f"the ack of {doing}")
        else:
            holder.outage.recovered()
        if counted(task):
            await _finish_if_done(holder, task.scan_id, task.library_id)

    return app


def _failed(holder: Holder, exc: BaseException, doing: str) -> None:
    what = unavailable(exc)
    if what is None:
        log.exception("%s failed; will retry", doing)
    else:
        holder.outage.failed(what, exc, doing)


async def _finish_if_done(holder: Holder, scan_id: uuid.UUID, library_id: uuid.UUID) -> None:
    """Record the scan's end if this was its last task. The task is acked already, so nobody
    would ask again: a NATS hiccup here (a cluster electing a new stream leader) is waited
    out rather than raised, or the scan would never finish."""
    delay = 0.25
    deadline = asyncio.get_running_loop().time() + FINISH_PATIENCE
    while True:
        try:
            if await holder.s.scan_backlog(scan_id) == 0:
                await holder.s.finish_scan(scan_id, library_id)
            return
        except (NatsError, TimeoutError) as e:
            if holder.stop.is_set() or asyncio.get_running_loop().time() > deadline:
                raise
            holder.outage.failed("NATS", e, f"the end of scan {scan_id} library {library_id}")
            await asyncio.sleep(delay)  # NATS is electing or reconnecting: back off
            delay = min(delay * 2, 5.0)


async def serve(settings: Settings, stop: asyncio.Event, *, nightly: bool = True) -> None:
    """Run the scanner in the current event loop until `stop` is set (tests, embedding)."""
    app = build_app(settings, nightly=nightly)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
