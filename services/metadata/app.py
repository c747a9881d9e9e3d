"""Composition root of the metadata service: a durable consumer on asset events, a worker pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from faststream import FastStream
from faststream.nats import NatsBroker

from services.metadata.handlers import MetadataWorker, NotSettled
from services.metadata.pool import PoolClosed, WorkerPool
from shared import events as ev
from shared.bus import connect, ensure_streams
from shared.consumer import Consumer, Delivery, Retry, subscribe
from shared.db import create_engine, scalar
from shared.health import Health, beat, consumer_check, database_check, nats_check
from shared.outage import Outage
from shared.settings import Settings

log = logging.getLogger(__name__)


# A file still being copied is tried again every settle time; after this many deliveries (about
# 20 minutes at the default 30 s) its failure is recorded even if it keeps changing.
MAX_DELIVERIES = 40

# What a worker imports before it takes a file (Pillow, pillow-heif, exifread, PyAV).
WORKER_PRELOAD = ("services.metadata.handlers",)


def worker_count() -> int:
    """Worker processes per replica (SHOEBOX_METADATA_WORKERS, default: one per core)."""
    return max(1, int(os.environ.get("SHOEBOX_METADATA_WORKERS", "0")) or (os.cpu_count() or 1))


def lower_priority(nice: int) -> None:
    """Renditions are background work: the service (and the workers it starts after this)
    yield the CPU to imports and requests (SHOEBOX_METADATA_NICE)."""
    current = os.nice(0)
    if nice > current:
        os.nice(min(nice, 19) - current)


def build_app(
    settings: Settings, workers: int | None = None, *, health: Health | None = None
) -> FastStream:
    nats = settings.nats
    # Every handler is shared/consumer.py's, which decodes its own messages: no FastDepends.
    broker = NatsBroker(nats.servers, log_level=logging.DEBUG, logger=log, apply_types=False)
    app = FastStream(broker, logger=log)
    n = workers or worker_count()
    state: dict[str, MetadataWorker] = {}
    outage = Outage(log, "metadata")
    health = health or Health("metadata")
    stop = asyncio.Event()
    beats: list[asyncio.Task[None]] = []

    @app.on_startup
    async def _start() -> None:
        nc = await connect(nats, "metadata")
        await ensure_streams(nc, nats)
        engine = create_engine(settings.db.url, pool=False)
        state["w"] = MetadataWorker(nc, settings, WorkerPool(n, preload=WORKER_PRELOAD), engine)
        health.add("nats", nats_check(nc))
        health.add("postgres", database_check(scalar(engine)))
        health.add("consumer", consumer_check(nc, nats.name("EVENTS"), nats.name("metadata")))
        beats.append(asyncio.create_task(beat(nc, nats, health, stop)))

    @app.on_shutdown
    async def _stop_workers() -> None:
        stop.set()
        for task in beats:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Before the broker waits for its handlers: a handler whose file is being read gets
        # PoolClosed at once and gives the message back, rather than stop waiting on the read.
        if "w" in state:
            await state["w"].pool.close()

    @app.after_shutdown
    async def _stop() -> None:
        if "w" in state:
            await state["w"].nc.drain()
            await state["w"].engine.dispose()

    async def on_asset_event(event: ev.Event, d: Delivery) -> None:
        """An asset's event, or a folder's births (FilesDiscovered, decision 0030): each of its
        files read as its asset's FileDiscovered, n * 2 at a time; a file met mid-copy brings
        the whole event back, and a redelivery skips the assets already read."""
        last_try = d.deliveries >= MAX_DELIVERIES
        try:
            if isinstance(event, ev.FilesDiscovered):
                await state["w"].handle_births(
                    event,
                    seq=d.stream_seq,
                    last_try=last_try,
                    again=d.deliveries > 1,
                    concurrency=n * 2,
                )
            else:
                await state["w"].handle(event, seq=d.stream_seq, last_try=last_try)
        except NotSettled as e:
            raise Retry(f"still changing; {e}", e.delay) from e
        except PoolClosed as e:
            raise Retry("stopping; given back") from e

    subscribe(
        broker,
        settings,
        Consumer(
            durable="metadata",
            stream="EVENTS",
            subject=nats.subject("events", "asset", ">"),
            decode=ev.decode,
            # Kept alive with in-progress acks while a file is read (however long it takes, at
            # most its time bound), so a dead replica's files come back within ack_wait.
            ack_wait=settings.metadata_ack_wait,
            max_ack_pending=max(64, n * 16),
            batch_size=max(2, n * 2),
            max_workers=n * 2,
            keepalive=True,
        ),
        on_asset_event,
        bus=lambda: state["w"].bus,
        outage=outage,
    )

    subscribe(
        broker,
        settings,
        Consumer(
            durable="metadata-folders",
            stream="EVENTS",
            subject=nats.subject("events", "folder", ">"),
            decode=ev.decode,
            ack_wait=settings.metadata_ack_wait,
            max_ack_pending=4,
            batch_size=1,
            max_workers=2,
            keepalive=True,
        ),
        on_asset_event,
        bus=lambda: state["w"].bus,
        outage=outage,
    )

    async def on_library_event(event: ev.Event, d: Delivery) -> None:
        """A library being deleted loses its renditions here, the bucket's one writer."""
        if isinstance(event, ev.LibraryDeletionStarted):
            await state["w"].finish_deletion(event.stream_id)

    subscribe(
        broker,
        settings,
        Consumer(
            durable="metadata-library",
            stream="EVENTS",
            subject=nats.subject("events", "library", ">"),
            decode=ev.decode,
            ack_wait=settings.metadata_ack_wait,
            max_ack_pending=16,
            keepalive=True,
        ),
        on_library_event,
        bus=lambda: state["w"].bus,
        outage=outage,
    )

    return app


async def serve(settings: Settings, stop: asyncio.Event, workers: int | None = None) -> None:
    """Run the metadata service in the current event loop until `stop` is set."""
    app = build_app(settings, workers)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
