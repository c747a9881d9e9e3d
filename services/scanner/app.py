"""Composition root of the scanner: faststream subscribers on library events and scan work."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from dataclasses import dataclass, field

from faststream import FastStream
from faststream.nats import NatsBroker
from nats.errors import Error as NatsError

from services.scanner.handlers import Scanner
from services.scanner.moves import AlbumMoves
from services.scanner.nightly import run_nightly
from services.scanner.rules import counted
from shared import events as ev
from shared import trace
from shared.bus import EventBus, connect, ensure_streams
from shared.checkpoint import follow_checkpoint
from shared.consumer import Consumer, Delivery, subscribe
from shared.health import Health, beat, consumer_check, database_check, nats_check
from shared.outage import Outage, unavailable
from shared.pg import close_pool, create_pool, storable
from shared.scanprogress import read_progress
from shared.settings import Settings
from shared.work import DirTask, decode_task

log = logging.getLogger(__name__)

FINISH_PATIENCE = 300.0  # seconds the last task of a scan keeps trying to record its end


@dataclass
class LocalTasks:
    """Folder tasks of each scan being handled here now. While one is, another that leaves the
    backlog needs not look at it: the scan owes a look, which the last of them to end takes.
    A first import's 16 tasks at once then cost a backlog look per batch, not per folder.

    The last one may end without leaving the backlog itself: given back (Retry, an outage) as
    a copy of a task that another delivery had already done, it is not in the backlog either,
    and nothing else would look (the scan would never finish)."""

    handling: collections.Counter[uuid.UUID] = field(default_factory=collections.Counter)
    owed: set[uuid.UUID] = field(default_factory=set)

    def begin(self, scan_id: uuid.UUID) -> None:
        self.handling[scan_id] += 1

    def end(self, scan_id: uuid.UUID, *, settles: bool) -> bool:
        """A task is out of its handler; whether it must look at the backlog now. One that
        `settles` (done: its settling follows) looks there, where its own end is counted."""
        self.handling[scan_id] -= 1
        if self.handling[scan_id] > 0:
            return False
        del self.handling[scan_id]
        if settles or scan_id not in self.owed:
            return False
        self.owed.discard(scan_id)
        return True

    def settled(self, scan_id: uuid.UUID) -> bool:
        """A task left the backlog; whether it looks at the backlog now (no other task of the
        scan is being handled here), or leaves the look owed to the last one."""
        if self.handling[scan_id] > 0:
            self.owed.add(scan_id)
            return False
        self.owed.discard(scan_id)
        return True


@dataclass
class Holder:
    scanner: Scanner | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    outage: Outage = field(default_factory=lambda: Outage(log, "scanner"))
    local: LocalTasks = field(default_factory=LocalTasks)
    looks: set[asyncio.Task[None]] = field(default_factory=set)

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
    # Every handler is shared/consumer.py's, which decodes its own messages: no FastDepends.
    broker = NatsBroker(nats.servers, log_level=logging.DEBUG, logger=log, apply_types=False)
    app = FastStream(broker, logger=log)
    holder = Holder()
    health = health or Health("scanner")

    @app.on_startup
    async def _start() -> None:
        nc = await connect(nats, "scanner")
        await ensure_streams(nc, nats)
        holder.scanner = scanner = Scanner(nc, await create_pool(settings.db.url), settings)
        health.add("nats", nats_check(nc))
        health.add("postgres", database_check(scanner.db.fetchval))
        health.add("consumer", consumer_check(nc, nats.name("WORK"), nats.name("scanner-dirs")))
        holder.tasks.append(asyncio.create_task(beat(nc, nats, health, holder.stop)))
        waiter = await follow_checkpoint(nc, nats, scanner.db.fetchval)
        moves = AlbumMoves(scanner.db, scanner.bus, waiter, nats, settings.consumer)
        holder.tasks.append(asyncio.create_task(moves.run(holder.stop)))
        if nightly:
            holder.tasks.append(asyncio.create_task(run_nightly(holder.s)))

    @app.after_shutdown
    async def _stop() -> None:
        # Set before cancelling: nats-py's fetch can turn a cancellation into a timeout, and the
        # moves consumer then ends at its next look at `stop` (within a second).
        holder.stop.set()
        for task in [*holder.tasks, *holder.looks]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if holder.scanner is not None:
            await holder.scanner.nc.drain()
            await close_pool(holder.scanner.db)

    def library_events(aggregate: str, durable: str) -> Consumer[ev.Event]:
        return Consumer(
            durable=durable,
            stream="EVENTS",
            subject=nats.subject("events", aggregate, ">"),
            decode=ev.decode,
            ack_wait=settings.scan.work_ack_wait,
            max_ack_pending=100,
        )

    async def on_library_event(event: ev.Event, d: Delivery) -> None:
        if isinstance(event, ev.LibraryScanRequested):
            # The scan's events are the scan's doing, under the request's correlation id.
            cid = (d.msg.raw_message.headers or {}).get(trace.CORRELATION_HEADER)
            with trace.acting(f"scan {event.scan_id}", cid):
                await holder.s.start_scan(event)

    def bus() -> EventBus:
        return holder.s.bus

    # Scan requests are on `events.scans.<library>` (decision 0022); a stream written before
    # that holds them on the library's subject, which is still followed for them (deletions
    # are the metadata service's: it owns the renditions, decision 0027).
    for aggregate, durable in (("scans", "scanner-scans"), ("library", "scanner-library")):
        subscribe(
            broker,
            settings,
            library_events(aggregate, durable),
            on_library_event,
            bus=bus,
            outage=holder.outage,
        )

    async def on_dir_task(task: DirTask, d: Delivery) -> None:
        holder.local.begin(task.scan_id)
        settles = False
        try:
            with trace.acting(f"{'scan' if counted(task) else 'watcher'} {task.scan_id}"):
                await holder.s.run_dir(task, keepalive=d.in_progress)
            settles = True
        finally:
            if holder.local.end(task.scan_id, settles=settles) and counted(task):
                _look_later(holder, task.scan_id, task.library_id)

    async def after_dir_task(task: DirTask | None, d: Delivery) -> None:
        # Done, or given up on as a dead letter: either way it has left the scan's backlog,
        # which may now be empty (decision 0005). An undecodable task names its scan only in
        # its subject; the scan's library is then read from the scan's progress.
        if task is None:
            scan_id = _scan_of(d.subject)
            library_id = (
                (await read_progress(holder.s.js, nats, scan_id)).library_id if scan_id else ""
            )
            if scan_id is not None and library_id:
                await _finish_if_done(holder, scan_id, uuid.UUID(library_id))
        elif counted(task):
            if not holder.local.settled(task.scan_id) and d.dead is None:
                return  # another task of the scan is being handled here, and looks when done
            if d.dead is not None:  # the scan's problems say which folder it could not list
                await holder.s.bus.publish(
                    ev.ScanProblemFound(
                        stream_id=task.library_id,
                        event_id=uuid.uuid5(d.dead.event_id, "problem"),
                        scan_id=task.scan_id,
                        path=storable(task.path),
                        message=f"could not be scanned (dead letter {d.dead.event_id}): "
                        + d.dead.error.splitlines()[0],
                    )
                )
            await _finish_if_done(holder, task.scan_id, task.library_id)

    subscribe(
        broker,
        settings,
        Consumer(
            durable="scanner-dirs",
            stream="WORK",
            subject=nats.subject("work", "scan", ">"),
            decode=decode_task,
            # A replica that dies mid-folder leaves its task unacked; after ack_wait another
            # replica (or the restarted one) gets it. Long folders send in-progress acks.
            ack_wait=settings.scan.work_ack_wait,
            max_ack_pending=1000,
            batch_size=settings.scan.folder_concurrency,
            max_workers=settings.scan.folder_concurrency,
        ),
        on_dir_task,
        bus=bus,
        outage=holder.outage,
        settled=after_dir_task,
    )

    return app


def _scan_of(subject: str) -> uuid.UUID | None:
    """The scan id of a `[<namespace>.]work.scan.<scanId>` subject."""
    try:
        return uuid.UUID(subject.rpartition(".")[2])
    except ValueError:
        return None


def _look_later(holder: Holder, scan_id: uuid.UUID, library_id: uuid.UUID) -> None:
    """The owed look at a scan's backlog, off the handler that takes it (which was given back,
    maybe by an outage that the look waits out)."""

    async def look() -> None:
        try:
            await _finish_if_done(holder, scan_id, library_id)
        except Exception as e:  # the next task or scan of the library looks again
            what = unavailable(e)
            if what is None:
                log.exception("scan %s library %s: looking at its backlog", scan_id, library_id)
            else:
                holder.outage.failed(what, e, f"the end of scan {scan_id}")

    task = asyncio.create_task(look())
    holder.looks.add(task)
    task.add_done_callback(holder.looks.discard)


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
