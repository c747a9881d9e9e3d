"""One shape for every durable consumer: decode, handle, then ack, try again later, or record.

Every durable consumer of Shoebox's services is built by `subscribe()` (decision 0024). One
delivery ends in exactly one of these ways:

- decoded and handled: acked, double-acked so that a work-queue message has left its stream
  before `settled` runs (a scan looks at its backlog there: decision 0005);
- undecodable (not JSON, or not the consumer's type): recorded as a dead letter at once, acked;
- `Retry` raised by the handler (not now, and nobody's fault: a file still being copied, the
  service stopping): nacked with its delay;
- NATS or PostgreSQL away (shared/outage.py): logged once, nacked after OUTAGE_DELAY; never a
  dead letter, however long the outage lasts;
- any other exception, the message's own fault: logged with its traceback and nacked with the
  back-off of `SHOEBOX_CONSUMER_BACKOFF`, until its `SHOEBOX_CONSUMER_MAX_DELIVER`-th delivery
  (or a later one, after an outage): that failure is recorded as a dead letter, then acked.

A dead letter is a `DeliveryFailed` event on `events.deadletter.<id>`, its id derived from the
consumer and the message's stream sequence; the projector writes it to `dead_letters`. The bound
is counted here, from JetStream's delivery count, rather than by the consumer's own
`max_deliver`: JetStream counts an outage's deliveries like a fault's, and a message past its
`max_deliver` is never delivered again yet stays in a work-queue stream, where it would hold
its scan's backlog above zero for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import msgspec
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsMessage, PullSub
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError

from shared import events as ev
from shared import metrics
from shared.outage import unavailable

if TYPE_CHECKING:
    from faststream.nats import NatsBroker
    from nats.aio.msg import Msg

    from shared.bus import EventBus
    from shared.outage import Outage
    from shared.settings import Settings

__all__ = ["Consumer", "Delivery", "Retry", "dead_letter", "subscribe"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# A double ack's wait: nats-py's default of 1 s is exceeded by a server busy with a
# million-file import (decision 0028); asked this many times before it counts as an outage.
ACK_TIMEOUT = 5.0
ACK_ATTEMPTS = 3
OUTAGE_DELAY = 2.0  # seconds before a message met by an outage is tried again
PAYLOAD_EXCERPT = 1000  # characters of a dead message kept with its record
_NAMESPACE = uuid.UUID("6d7c2f0e-8a8b-4c1e-9f57-2b0d8c3a9e41")


class Retry(Exception):
    """Raised by a handler: not now, through nobody's fault; the message comes back after
    `delay` seconds (None: at once) and is never recorded as a dead letter for it."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True)
class Consumer(Generic[T]):
    """A durable pull consumer: where it reads, how it decodes, how much it takes at once."""

    durable: str  # without the namespace
    stream: str  # likewise
    subject: str  # the full filter subject (namespaced)
    decode: Callable[[bytes], T]
    ack_wait: float
    max_ack_pending: int
    batch_size: int = 1
    max_workers: int = 1
    keepalive: bool = False  # report the message in progress every ack_wait / 3 while handled


class Delivery:
    """One delivery of a message, as its handler sees it."""

    def __init__(self, msg: NatsMessage, max_deliver: int) -> None:
        self.msg = msg
        self.subject: str = msg.raw_message.subject
        meta = msg.raw_message.metadata
        self.deliveries = int(meta.num_delivered or 1)
        self.stream_seq = int(meta.sequence.stream)
        self.last_try = self.deliveries >= max_deliver
        self.dead: ev.DeliveryFailed | None = None  # its record, once given up on

    async def in_progress(self) -> None:
        """Tell NATS the message is still being worked on (ack_wait starts again)."""
        await self.msg.in_progress()


def dead_letter(durable: str, stream: str, msg: Msg, error: str) -> ev.DeliveryFailed:
    """The record of a message the consumer `durable` (on `stream`) gives up on."""
    meta = msg.metadata
    seq = int(meta.sequence.stream)
    key = uuid.uuid5(_NAMESPACE, f"{durable}:{stream}:{seq}")
    return ev.DeliveryFailed(
        stream_id=key,
        event_id=key,
        consumer=durable,
        stream=stream,
        subject=msg.subject,
        stream_seq=seq,
        deliveries=int(meta.num_delivered or 1),
        error=error[: PAYLOAD_EXCERPT * 2],
        payload=msg.data[: PAYLOAD_EXCERPT * 4].decode("utf-8", "replace")[:PAYLOAD_EXCERPT],
    )


async def _keepalive(d: Delivery, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await d.in_progress()
        except (NatsError, TimeoutError) as e:  # reconnecting: the next one may get through
            log.warning("cannot report %s in progress: %s", d.subject, e)


def subscribe(
    broker: NatsBroker,
    settings: Settings,
    spec: Consumer[T],
    handle: Callable[[T, Delivery], Awaitable[None]],
    *,
    bus: Callable[[], EventBus],
    outage: Outage,
    settled: Callable[[T | None, Delivery], Awaitable[None]] | None = None,
) -> None:
    """Subscribe `handle` to `spec`'s durable consumer. `settled` runs once the message has
    left (acked, or recorded as a dead letter: the value is None when it could not be
    decoded), whether or not the ack's answer came back."""
    nats, bounds = settings.nats, settings.consumer
    service = outage.service

    async def record(d: Delivery, value: T | None, error: str) -> None:
        letter = dead_letter(spec.durable, spec.stream, d.msg.raw_message, error)
        try:
            await bus().publish(letter)
        except Exception as e:  # not recorded: not acked either, it comes back
            await _retry_outage(outage, d, e, f"the dead letter of {d.subject}")
            return
        log.error(
            "%s: %s seq %d given up after %d deliveries and recorded as dead letter %s: %s",
            service,
            d.subject,
            d.stream_seq,
            d.deliveries,
            letter.event_id,
            error,
        )
        metrics.DEAD_LETTERS.labels(spec.durable).inc()
        d.dead = letter
        await _settle(d, value)

    async def _settle(d: Delivery, value: T | None) -> None:
        # Gone from a work-queue stream before `settled` looks. A slow answer (a server busy
        # with a million-file import, a leader election) is asked for again and counted, not
        # raised; the ack may have landed all the same (its answer lost), so settled runs
        # either way, and a message that does come back adds nothing (decision 0028).
        for attempt in range(1, ACK_ATTEMPTS + 1):
            try:
                await d.msg.raw_message.ack_sync(timeout=ACK_TIMEOUT)
                await d.msg.ack()  # faststream's record of it (the raw ack is done)
            except NatsTimeoutError as e:
                metrics.ACK_TIMEOUTS.labels("task").inc()
                if attempt == ACK_ATTEMPTS:
                    _failed(outage, e, f"the ack of {d.subject}")
                continue
            except Exception as e:
                _failed(outage, e, f"the ack of {d.subject}")
            else:
                outage.recovered()
            break
        if settled is not None:
            await settled(value, d)

    async def consume(msg: NatsMessage) -> None:
        d = Delivery(msg, bounds.max_deliver)
        try:
            value = spec.decode(msg.body)
        except msgspec.DecodeError as e:  # not JSON, or not T (ValidationError)
            await record(d, None, f"undecodable: {e}")
            return
        keepalive = (
            asyncio.create_task(_keepalive(d, spec.ack_wait / 3)) if spec.keepalive else None
        )
        try:
            await handle(value, d)
        except Retry as e:
            log.info("%s: %s: %s; again later", service, d.subject, e)
            with contextlib.suppress(NatsError, TimeoutError):  # else back at ack_wait
                await msg.nack(delay=e.delay)
            return
        except Exception as e:
            if unavailable(e) is not None:
                await _retry_outage(outage, d, e, d.subject)
            elif d.last_try:
                await record(d, value, f"{type(e).__name__}: {e}")
            else:
                delay = bounds.delay(d.deliveries)
                log.exception(
                    "%s: %s failed (delivery %d of %d); again in %g s",
                    service,
                    d.subject,
                    d.deliveries,
                    bounds.max_deliver,
                    delay,
                )
                with contextlib.suppress(NatsError, TimeoutError):
                    await msg.nack(delay=delay)
            return
        finally:
            if keepalive is not None:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
        await _settle(d, value)

    broker.subscriber(
        spec.subject,
        stream=JStream(name=nats.name(spec.stream), declare=False),
        durable=nats.name(spec.durable),
        pull_sub=PullSub(batch_size=spec.batch_size, timeout=1.0),
        # A replica that dies mid-message leaves it unacked: another one (or the restarted one)
        # gets it after ack_wait. No JetStream max_deliver or backoff: see the module docstring.
        config=ConsumerConfig(ack_wait=spec.ack_wait, max_ack_pending=spec.max_ack_pending),
        ack_policy=AckPolicy.MANUAL,
        max_workers=spec.max_workers,
        decoder=_itself,
    )(consume)


async def _itself(msg: NatsMessage) -> NatsMessage:
    """faststream's decoder, for a handler that decodes the body itself: the message as it
    came, not a JSON parse of its body. With the broker's `apply_types=False` (no FastDepends
    per message: it ran a thread-pool hand-off for every message, a tenth of a scanner's CPU
    in a first import) the handler is called with what this returns."""
    return msg


def _failed(outage: Outage, exc: BaseException, doing: str) -> None:
    """An outage is logged once (the caller retries); anything else with its traceback."""
    what = unavailable(exc)
    if what is None:
        log.error("%s: %s failed", outage.service, doing, exc_info=exc)
    else:
        outage.failed(what, exc, doing)


async def _retry_outage(outage: Outage, d: Delivery, exc: BaseException, doing: str) -> None:
    _failed(outage, exc, doing)
    with contextlib.suppress(NatsError, TimeoutError):  # else it comes back at ack_wait
        await d.msg.nack(delay=OUTAGE_DELAY)
