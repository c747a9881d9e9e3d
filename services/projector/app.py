"""The projector: the only writer of the read models, applying EVENTS in order, in batches."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg
import msgspec
from nats.errors import Error as NatsError
from nats.js import api
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.projector import checkpoint
from services.projector.failures import Failure, failure_ops
from services.projector.positions import position_ops
from services.projector.projections import plan
from services.projector.reader import ConsumerGone, PullReader
from services.projector.send import positional, send
from shared import events as ev
from shared import metrics
from shared.checkpoint import checkpoint_subject
from shared.outage import Outage, database_down, unavailable
from shared.schema import PROJECTION_VERSION

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.settings import NatsSettings

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
RETRY_FIRST = 0.5  # seconds before the first retry after the database went away; doubles
RETRY_MAX = 15.0
PUMP_STOP = 5.0  # seconds the fetch loop is given to stop
GC_FIRST = 50_000  # allocations between the cyclic collector's young runs while projecting

Statements = list[tuple["TextClause", list[dict[str, Any]]]]


def stream_seq(msg: Msg) -> int:
    """A JetStream message's stream sequence, from its reply subject alone (nats-py's
    `msg.metadata` parses every token into objects: it was a tenth of a replay's CPU).

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or
    with `<domain>.<account hash>` after ACK and a token at the end (twelve or more tokens)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[5])
    if len(tokens) >= 12:
        return int(tokens[7])
    return int(msg.metadata.sequence.stream)  # nats-py's error for what is not a JetStream ack


class Prepared(NamedTuple):
    """A fetched batch, decoded and planned ahead of its commit."""

    first: int  # its first sequence past the position it was prepared after
    last: int
    decoded: list[tuple[int, ev.BaseEvent]]
    subjects: dict[int, str]
    failures: list[Failure]
    statements: Statements


_collecting_less = 0


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while projecting: a batch makes tens of
    thousands of small objects (events, parameter dicts, UUIDs), none of them in a cycle, and
    the default threshold ran a collection every 700 of them. The objects alive at start are
    frozen out of the full collections. Nested uses (several projectors in one process) keep
    the threshold until the last ends."""
    global _collecting_less
    before = gc.get_threshold()
    if _collecting_less == 0:
        gc.freeze()
        gc.set_threshold(max(GC_FIRST, before[0]), *before[1:])
    _collecting_less += 1
    try:
        yield
    finally:
        _collecting_less -= 1
        if _collecting_less == 0:
            gc.set_threshold(*before)
            gc.unfreeze()


class ProjectionVersionMismatch(RuntimeError):
    """The read models were built by other projections than this code's: applying more events
    on top would mix two shapes of the same rows, so the projector refuses to start."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"the read models were built by projection version {found}, this projector is "
            f"version {PROJECTION_VERSION}: stop the services and run `shoebox replay` "
            "(`make replay`) to rebuild them from the event stream"
        )
        self.found = found


class Projector:
    """Reads EVENTS from its checkpoint with an ephemeral pull consumer; one transaction per batch.

    The checkpoint in PostgreSQL is the only position there is: on start (or after a crash)
    delivery resumes at checkpoint + 1, and a batch's effects and its checkpoint commit
    together, so each event's effect lands exactly once.
    """

    def __init__(
        self,
        nc: Client,
        engine: AsyncEngine,
        settings: NatsSettings,
        *,
        batch_size: int = BATCH_SIZE,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.engine = engine
        self.settings = settings
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.position = 0
        self.outage = Outage(log, "projector")
        self.bound = False  # an EVENTS consumer is open (readiness)
        self._raw: asyncpg.Connection | None = None  # the connection held while following

    async def run(
        self,
        stop: asyncio.Event | None = None,
        until_seq: int | None = None,
        *,
        retry: bool = True,
    ) -> None:
        """Project until `stop` is set (or, with until_seq, until that sequence is applied).

        While the database is unavailable the same events are tried again, with a back-off;
        with `retry` False (a replay someone watches) its error is raised instead.
        """
        stop = stop or asyncio.Event()
        with fewer_collections():
            await self._run(stop, until_seq, retry)

    async def _run(self, stop: asyncio.Event, until_seq: int | None, retry: bool) -> None:
        delay = RETRY_FIRST
        failed_at = -1
        while not stop.is_set():
            try:
                await self._follow(stop, until_seq)
                return
            except Exception as e:
                what = unavailable(e)
                if not retry or what is None:
                    raise
                if self.position > failed_at:
                    delay = RETRY_FIRST  # it got further since the last outage
                failed_at = self.position
                # The database is gone for a moment (restarted, connections cut): nothing was
                # committed, so the same events are tried again from the checkpoint.
                self.outage.failed(what, e, f"the batch from seq {self.position + 1}")
                log.debug("projector: retrying seq %d in %.1f s", self.position + 1, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _follow(self, stop: asyncio.Event, until_seq: int | None) -> None:
        """Project from the checkpoint until `stop` (or `until_seq`); raises what the database
        raised when it is unavailable."""
        # Read again on every retry: events applied one by one before the database went away
        # are committed with their checkpoint, and must not be applied twice.
        self.position, version = await checkpoint.read_checkpoint(self.engine)
        if version != PROJECTION_VERSION:
            raise ProjectionVersionMismatch(version)
        if until_seq is not None and self.position >= until_seq:
            return
        # One connection for as long as the projector follows: a checkout per batch cost a
        # pre-ping round trip, which waits behind whatever the loop is doing (decision 0034).
        # A connection that broke raises out of here, and the retry takes a fresh one.
        async with self.engine.connect() as conn:
            self._raw = (await conn.get_raw_connection()).driver_connection
            try:
                await self._subscribed(stop, until_seq)
            finally:
                self._raw = None

    async def _subscribed(self, stop: asyncio.Event, until_seq: int | None) -> None:
        """Follow EVENTS from the position with a pull consumer, re-created when it is gone."""
        while not stop.is_set():
            # An ephemeral pull consumer from the checkpoint: fetches of up to batch_size in
            # stream order. If a sequence is ever skipped (a reconnect lost a fetch), the
            # consumer is dropped and re-created from the checkpoint.
            stream = self.settings.name("EVENTS")
            consumer = await self.js.add_consumer(
                stream,
                api.ConsumerConfig(
                    filter_subject=self.settings.subject("events", ">"),
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=self.position + 1,
                    ack_policy=api.AckPolicy.NONE,
                    inactive_threshold=60.0,
                    max_waiting=1,
                ),
            )
            sub = PullReader(self.nc, stream, str(consumer.name), self.batch_size)
            await sub.start()
            self.bound = True
            # The next batch is fetched, decoded and planned while this one commits.
            queue: asyncio.Queue[Prepared] = asyncio.Queue(maxsize=1)
            pumping = asyncio.Event()
            pumping.set()
            pump = asyncio.create_task(self._pump(sub, queue, pumping))
            try:
                while not stop.is_set():
                    try:
                        batch = await asyncio.wait_for(queue.get(), 0.5)
                    except TimeoutError:
                        if pump.done() and isinstance(pump.exception(), ConsumerGone):
                            log.warning("projector: %s; re-subscribing", pump.exception())
                            break
                        if pump.done():
                            pump.result()  # a fetch failed: raise it here
                        continue
                    if batch.first > self.position + 1:
                        log.warning(
                            "projector: expected seq %d, got %d; re-subscribing",
                            self.position + 1,
                            batch.first,
                        )
                        break
                    await self._apply(batch)
                    if until_seq is not None and self.position >= until_seq:
                        return
            finally:
                # The pump is also told to stop, and it is waited for a bounded time only: a
                # stop or an error never hangs here.
                self.bound = False
                pumping.clear()
                pump.cancel()
                _, running = await asyncio.wait({pump}, timeout=PUMP_STOP)
                if running:
                    log.warning("projector: the fetch loop did not stop in %.0f s; left", PUMP_STOP)
                elif not pump.cancelled() and pump.exception() is not None:
                    log.debug("projector: fetch loop ended: %r", pump.exception())
                with contextlib.suppress(NatsError):  # the connection may be closing
                    await sub.stop()

    async def _pump(
        self,
        sub: PullReader,
        queue: asyncio.Queue[Prepared],
        pumping: asyncio.Event,
    ) -> None:
        ahead = self.position  # the last sequence prepared
        while pumping.is_set():
            batch = self.prepare(await sub.fetch(), ahead)
            if batch is not None:
                ahead = batch.last
            while batch and pumping.is_set():
                try:
                    await asyncio.wait_for(queue.put(batch), 0.5)
                    break
                except TimeoutError:
                    continue  # the queue is full while a batch commits: look at the flag again

    def prepare(self, msgs: list[Msg], after: int) -> Prepared | None:
        """Decode and plan the messages past sequence `after`; None when there are none.

        An event that cannot be decoded is a failure, passed over: it is logged at ERROR and
        recorded with the batch (services/projector/failures.py)."""
        decoded: list[tuple[int, ev.BaseEvent]] = []
        subjects: dict[int, str] = {}
        failures: list[Failure] = []
        first, last = 0, after
        for msg in msgs:
            seq = stream_seq(msg)
            if seq <= after:
                continue  # already applied (redelivered after a crash or reconnect)
            first = first or seq
            last = max(last, seq)
            subjects[seq] = msg.subject
            try:
                decoded.append((seq, ev.decode(msg.data)))
            except msgspec.DecodeError as e:
                # An event this version cannot read: recorded and passed over, so a newer
                # producer cannot stall every read model (a replay after upgrading applies it).
                failures.append(self._failed(Failure(seq, msg.subject, f"cannot decode: {e}")))
        if not first:
            return None
        statements = self._statements(decoded, failures, subjects)
        return Prepared(first, last, decoded, subjects, failures, statements)

    async def apply(self, msgs: list[Msg]) -> None:
        """Apply a batch past the position and its checkpoint in one transaction."""
        batch = self.prepare(msgs, self.position)
        if batch is not None:
            await self._apply(batch)

    async def _apply(self, batch: Prepared) -> None:
        """Commit a prepared batch with its checkpoint, then announce the checkpoint.

        An event that cannot be applied is passed over, never retried forever: it is logged at
        ERROR, recorded in `projection_failures` and its aggregate's row is moved past it
        (services/projector/failures.py), in the same transaction as the checkpoint.
        """
        _, last, decoded, subjects, failures, statements = batch
        try:
            await self._commit(decoded, last, failures, subjects, statements)
        except (asyncpg.PostgresError, IntegrityError, DBAPIError) as e:
            if database_down(e):
                raise  # not the events' fault: run() tries them again once the database is back
            # Isolate the bad event: apply one at a time, each with the failures before it.
            if len(decoded) > 1:
                log.warning("projector: batch ending at %d failed (%s); applying singly", last, e)
            for seq, event in decoded:
                before = [f for f in failures if f.seq < seq]
                failures = [f for f in failures if f.seq > seq]
                try:
                    await self._commit([(seq, event)], seq, before, subjects)
                except (asyncpg.PostgresError, IntegrityError, DBAPIError) as err:
                    if database_down(err):
                        raise
                    failure = self._failed(Failure(seq, subjects[seq], str(err), event))
                    await self._commit([], seq, [*before, failure], subjects)
            await self._commit([], last, failures, subjects)
        self.position = last
        self.outage.recovered()
        metrics.EVENTS_PROJECTED.inc(len(decoded))
        metrics.CHECKPOINT.set(last)
        await self.nc.publish(checkpoint_subject(self.settings), str(last).encode())
        if self.on_batch:
            self.on_batch(last)

    @staticmethod
    def _failed(failure: Failure) -> Failure:
        metrics.EVENTS_PASSED_OVER.inc()
        log.error(
            "projector: event %s cannot be applied, passed over (recorded in "
            "projection_failures): %s",
            failure.describe(),
            failure.error,
        )
        return failure

    @staticmethod
    def _statements(
        decoded: list[tuple[int, ev.BaseEvent]], failures: list[Failure], subjects: dict[int, str]
    ) -> Statements:
        """The statements of a batch's events and failures, and of their rows' positions."""
        positioned: set[int] = set()
        out = plan(decoded, positioned)
        out += [(stmt, [params]) for f in failures for stmt, params in failure_ops(f)]
        # Every event moves its aggregate's position, applied or passed over.
        moved: list[tuple[int, str, ev.BaseEvent | None]] = [
            (seq, subjects.get(seq, ""), event) for seq, event in decoded
        ]
        moved += [(f.seq, f.subject, f.event) for f in failures]
        return out + position_ops(moved, positioned)

    async def _commit(
        self,
        decoded: list[tuple[int, ev.BaseEvent]],
        last: int,
        failures: list[Failure] | None = None,
        subjects: dict[int, str] | None = None,
        statements: Statements | None = None,
    ) -> None:
        """The batch's statements, its failures and the new checkpoint in ONE asyncpg transaction.

        asyncpg's own executemany (a prepared statement, one round of binding per row) skips
        SQLAlchemy's per-row parameter work, and a long run of a statement with a set-based
        form is one statement over arrays (services/projector/send.py). The transaction is
        asyncpg's too: SQLAlchemy's adapter only begins one at its own first execute, so
        statements sent on the driver connection under `engine.begin()` would each commit on
        their own.
        """
        if statements is None:
            statements = self._statements(decoded, failures or [], subjects or {})
        if self._raw is not None:
            await self._transaction(self._raw, statements, last)
            return
        async with self.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None, "a checked-out connection has a driver connection"
            await self._transaction(raw, statements, last)

    @staticmethod
    async def _transaction(raw: asyncpg.Connection, statements: Statements, last: int) -> None:
        async with raw.transaction():
            for stmt, rows in statements:
                await send(raw, stmt, rows)
            sql, names = positional(checkpoint.ADVANCE)
            params = checkpoint.advance_params(last)
            await raw.execute(sql, *(params[n] for n in names))
