"""Composition root of the metadata service: a durable consumer on asset events, a worker pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

import msgspec
from faststream import AckPolicy, FastStream
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from nats.errors import Error as NatsError

from services.metadata.handlers import MetadataWorker, NotSettled
from services.metadata.pool import PoolClosed, WorkerPool
from shared import events as ev
from shared.bus import connect, ensure_streams
from shared.db import create_engine
from shared.health import Health, beat, consumer_check, database_check, nats_check
from shared.outage import Outage, unavailable
from shared.settings import Settings

log = logging.getLogger(__name__)


# A file still being copied is tried again every settle time; after this many deliveries (about
# 20 minutes at the default 30 s) its failure is recorded even if it keeps changing.
MAX_DELIVERIES = 40

# What a worker imports before it takes a file (Pillow, pillow-heif, exifread, PyAV).
WORKER_PRELOAD = ("services.metadata.handlers",)


def _delivered(msg: NatsMessage) -> int:
    return int(msg.raw_message.metadata.num_delivered or 1)


async def _in_progress(msg: NatsMessage, ack_wait: float) -> None:
    """Tell NATS the message is still being worked on, every third of ack_wait, until cancelled
    (however long the file takes, at most its time bound)."""
    while True:
        await asyncio.sleep(ack_wait / 3)
        try:
            await msg.in_progress()
        except (NatsError, TimeoutError) as e:  # reconnecting: the next one may get through
            log.warning("metadata: cannot report %s in progress: %s", msg.raw_message.subject, e)


@contextlib.asynccontextmanager
async def _kept_alive(msg: NatsMessage, ack_wait: float) -> AsyncIterator[None]:
    """The message reported in progress while the block runs."""
    keepalive = asyncio.create_task(_in_progress(msg, ack_wait))
    try:
        yield
    finally:
        keepalive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keepalive


def worker_count() -> int:
    """Worker processes per replica (SHOEBOX_METADATA_WORKERS, default: one per core)."""
    return max(1, int(os.environ.get("SHOEBOX_METADATA_WORKERS", "0")) or (os.cpu_count() or 1))


def build_app(
    settings: Settings, workers: int | None = None, *, health: Health | None = None
) -> FastStream:
    nats = settings.nats
    broker = NatsBroker(nats.servers, log_level=logging.DEBUG, logger=log)
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
        health.add("postgres", database_check(engine))
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

    @broker.subscriber(
        nats.subject("events", "asset", ">"),
        stream=JStream(name=nats.name("EVENTS"), declare=False),
        durable=nats.name("metadata"),
        pull_sub=PullSub(batch_size=max(2, n * 2), timeout=1.0),
        config=ConsumerConfig(ack_wait=settings.metadata_ack_wait, max_ack_pending=max(64, n * 16)),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_workers=n * 2,
    )
    async def on_asset_event(msg: NatsMessage) -> None:
        try:
            event = ev.decode(msg.body)
        except msgspec.ValidationError:
            log.error("metadata: undecodable asset event on %s; rejected", msg.raw_message.subject)
            await msg.reject()
            return
        async with _kept_alive(msg, settings.metadata_ack_wait):
            try:
                await state["w"].handle(
                    event,
                    seq=msg.raw_message.metadata.sequence.stream,
                    last_try=_delivered(msg) >= MAX_DELIVERIES,
                )
            except NotSettled as e:
                log.info("metadata: %s still changing; %s", msg.raw_message.subject, e)
                await msg.nack(delay=e.delay)
            except PoolClosed:
                log.info("metadata: stopping; %s given back", msg.raw_message.subject)
                await msg.nack()
            except Exception as e:
                # NATS or PostgreSQL away for a moment: logged once, the file is read again later.
                # Anything else is a fault: faststream logs it with its traceback and nacks it.
                what = unavailable(e)
                if what is None:
                    raise
                outage.failed(what, e, f"asset event {msg.raw_message.subject}")
                with contextlib.suppress(NatsError, TimeoutError):  # else it comes back at ack_wait
                    await msg.nack(delay=2)
            else:
                outage.recovered()

    @broker.subscriber(
        nats.subject("events", "library", ">"),
        stream=JStream(name=nats.name("EVENTS"), declare=False),
        durable=nats.name("metadata-library"),
        pull_sub=PullSub(batch_size=1, timeout=1.0),
        config=ConsumerConfig(ack_wait=settings.metadata_ack_wait, max_ack_pending=16),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_library_event(msg: NatsMessage) -> None:
        """A library being deleted loses its renditions here, the bucket's one writer."""
        try:
            event = ev.decode(msg.body)
        except msgspec.ValidationError:
            log.error(
                "metadata: undecodable library event on %s; rejected", msg.raw_message.subject
            )
            await msg.reject()
            return
        if isinstance(event, ev.LibraryDeletionStarted):
            async with _kept_alive(msg, settings.metadata_ack_wait):
                await state["w"].finish_deletion(event.stream_id)

    return app


async def serve(settings: Settings, stop: asyncio.Event, workers: int | None = None) -> None:
    """Run the metadata service in the current event loop until `stop` is set."""
    app = build_app(settings, workers)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
