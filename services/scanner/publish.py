"""Publishing a folder's planned events: pipelined, a bounded window of acks in flight.

A first import publishes one `FileDiscovered` per file. Awaiting each publish (or a gather of
256, then the next 256) leaves the connection idle while the last acks of a chunk come back;
nats-py's `publish_async` pipelines, but a publish refused by its expectation never resolves
its future (nats.py issue 985). So the acks are read here, on one inbox subscription per
connection: each publish carries its own reply subject, its future is resolved by the ack, a
refusal is read from the ack itself, and every wait has an explicit timeout.

A publish whose ack does not come within `ACK_TIMEOUT` (a loaded server, a reconnect, a leader
election) is sent again with the same headers: its `Nats-Msg-Id` makes the repeat a duplicate
the stream drops (its ack says `duplicate`), and the expected-last-subject-sequence of a first
discovery (0) still refuses a second asset from another replica. After `ATTEMPTS` rounds the
folder fails with a NATS timeout, and its task comes back (decision 0028).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
import weakref
from typing import TYPE_CHECKING

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError

from shared import events as ev
from shared import metrics
from shared.bus import WRONG_LAST_SEQUENCE, WrongExpectedSequence
from shared.trace import event_headers
from shared.work import WORK_ENCODER, DirTask, dir_task_msg_id, scan_work_subject

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js import JetStreamContext

    from shared.bus import EventBus
    from shared.settings import NatsSettings

log = logging.getLogger(__name__)

WINDOW = 512  # publishes in flight per folder, awaiting their acks
ACK_TIMEOUT = 5.0  # seconds a round waits for its last ack
ATTEMPTS = 4  # rounds before the folder fails (well inside the 120 s duplicate window)

Planned = tuple[ev.BaseEvent, int | None]  # an event and the sequence its aggregate must be at


class _Error(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Ack(msgspec.Struct):
    seq: int = 0
    error: _Error | None = None


_ACK = msgspec.json.Decoder(_Ack)
_Item = tuple[ev.BaseEvent, str, dict[str, str]]  # an event, its subject, its headers
_RETRY = object()  # an answer that says "not now" (no responders, 503): sent again


class Pipeline:
    """Pipelined JetStream publishes over one connection (shared by its concurrent folders)."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.inbox = nc.new_inbox()
        self.tokens = itertools.count()
        self.waiting: dict[str, asyncio.Future[object]] = {}
        self.sub: Subscription | None = None
        self.lock = asyncio.Lock()

    async def _subscribe(self) -> None:
        async with self.lock:
            if self.sub is None:
                self.sub = await self.nc.subscribe(f"{self.inbox}.*", cb=self._answer)

    async def _answer(self, msg: Msg) -> None:
        future = self.waiting.pop(msg.subject.rpartition(".")[2], None)
        if future is None or future.done():
            return  # the answer to a round that gave up on it: its repeat has its own token
        if (msg.headers and msg.headers.get("Status") == "503") or not msg.data:
            future.set_result(_RETRY)
            return
        try:
            future.set_result(_ACK.decode(msg.data))
        except msgspec.DecodeError as e:
            future.set_exception(APIError(description=f"unreadable publish ack: {e}"))

    async def publish(self, bus: EventBus, planned: list[Planned]) -> list[ev.BaseEvent]:
        """Append `planned` (each event with its aggregate's expected last sequence, or None);
        returns the events refused by their expectation. Raises nats' TimeoutError when acks
        stay away for ATTEMPTS rounds, APIError when the stream refuses for another reason."""
        await self._subscribe()
        base = event_headers()
        todo = [
            (event, bus.subject_of(event), _headers(event, expected, base))
            for event, expected in planned
        ]
        conflicts: list[ev.BaseEvent] = []
        for attempt in range(ATTEMPTS):
            if attempt:
                metrics.PUBLISH_RETRIES.inc(len(todo))
                log.debug("publish: %d event(s) unanswered; round %d", len(todo), attempt + 1)
            todo = await self._round(todo, conflicts)
            if not todo:
                return conflicts
        raise NatsTimeoutError(f"{len(todo)} publish(es) unanswered after {ATTEMPTS} rounds")

    async def _round(self, todo: list[_Item], conflicts: list[ev.BaseEvent]) -> list[_Item]:
        """Send `todo` with at most WINDOW unanswered; returns what got no usable answer."""
        window = asyncio.Semaphore(WINDOW)
        sent: list[tuple[_Item, str, asyncio.Future[object]]] = []
        loop = asyncio.get_running_loop()
        unsent = 0
        for i, item in enumerate(todo):
            if window.locked():
                try:
                    await asyncio.wait_for(window.acquire(), ACK_TIMEOUT)
                except TimeoutError:
                    metrics.ACK_TIMEOUTS.labels("publish").inc()
                    unsent = len(todo) - i  # nothing comes back: the rest waits a round
                    break
            else:
                await window.acquire()
            token = str(next(self.tokens))
            future: asyncio.Future[object] = loop.create_future()
            future.add_done_callback(lambda _: window.release())
            self.waiting[token] = future
            sent.append((item, token, future))
            event, subject, headers = item
            await self.nc.publish(
                subject, ev.encode(event), reply=f"{self.inbox}.{token}", headers=headers
            )
        if sent:
            await asyncio.wait([f for *_, f in sent], timeout=ACK_TIMEOUT)
        again = todo[len(todo) - unsent :] if unsent else []
        for item, token, future in sent:
            if not future.done():
                self.waiting.pop(token, None)
                future.cancel()
                metrics.ACK_TIMEOUTS.labels("publish").inc()
                again.append(item)
                continue
            answer = future.result()
            if answer is _RETRY:
                again.append(item)
                continue
            assert isinstance(answer, _Ack)
            error = answer.error
            if error is None:
                continue
            if error.err_code == WRONG_LAST_SEQUENCE:
                conflicts.append(item[0])
            elif error.code == 503:
                again.append(item)  # JetStream not ready yet (a leader being elected)
            else:
                raise APIError(
                    code=error.code, err_code=error.err_code, description=error.description
                )
        return again


def _headers(event: ev.BaseEvent, expected: int | None, base: dict[str, str]) -> dict[str, str]:
    headers = {"Nats-Msg-Id": str(event.event_id), **base}
    if expected is not None:
        headers["Nats-Expected-Last-Subject-Sequence"] = str(expected)
    return headers


_PIPELINES: weakref.WeakKeyDictionary[Client, Pipeline] = weakref.WeakKeyDictionary()


def pipeline_for(nc: Client) -> Pipeline:
    """The connection's pipeline (one inbox subscription per connection)."""
    pipeline = _PIPELINES.get(nc)
    if pipeline is None:
        pipeline = _PIPELINES[nc] = Pipeline(nc)
    return pipeline


class BirthsRefused(Exception):
    """A folder's position moved since the scanner read it: another replica (or an earlier
    delivery of this task) recorded births there first. The task is planned again once the
    read model has caught up (decision 0030)."""


BATCH_FILES = 1000  # files per FilesDiscovered at most (SHOEBOX_SCAN_BATCH_FILES, default):
# a name is at most 255 bytes, so a part stays near 300 KB, inside NATS' 1 MB payload.


def chunks(event: ev.FilesDiscovered, most: int = BATCH_FILES) -> list[ev.FilesDiscovered]:
    """A folder's births as events of at most `most` files (at most BATCH_FILES); the first
    keeps the event's id, the others derive theirs from it."""
    most = max(1, min(most, BATCH_FILES))
    files = event.files
    return [
        _part(event, files[i : i + most], n) for n, i in enumerate(range(0, len(files), most))
    ] or [event]


def _part(event: ev.FilesDiscovered, files: list[ev.FolderFile], n: int) -> ev.FilesDiscovered:
    if n == 0 and len(files) == len(event.files):
        return event
    event_id = event.event_id if n == 0 else uuid.uuid5(event.event_id, f"part-{n}")
    return msgspec.structs.replace(event, files=files, event_id=event_id)


KEEPALIVE_EVERY = 2.0  # seconds between in-progress reports while a folder's births go out


async def publish_births(
    bus: EventBus,
    event: ev.FilesDiscovered,
    expected: int,
    most: int = BATCH_FILES,
    keepalive: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Append a folder's births after `expected` (the folder's position in the read model),
    each part (of at most `most` files) after the last. Raises BirthsRefused when the folder
    has moved on. `keepalive` is called every KEEPALIVE_EVERY seconds meanwhile: a folder of a
    million files is a thousand parts, and its task must not come back to a second replica
    (to be refused) while they go out."""
    loop = asyncio.get_running_loop()
    said = loop.time()
    for part in chunks(event, most):
        if keepalive is not None and loop.time() - said > KEEPALIVE_EVERY:
            await keepalive()
            said = loop.time()
        for attempt in range(ATTEMPTS):
            try:
                expected = await bus.publish(part, expected_last_seq=expected)
                break
            except WrongExpectedSequence as e:
                raise BirthsRefused(event.folder) from e
            except NatsTimeoutError:
                # Sent again under the same Nats-Msg-Id and expectation: a repeat of a stored
                # part is a duplicate the stream drops, or refused (then planned again).
                metrics.ACK_TIMEOUTS.labels("publish").inc()
                if attempt == ATTEMPTS - 1:
                    raise
                metrics.PUBLISH_RETRIES.inc()


async def publish_planned(
    bus: EventBus,
    planned: list[Planned],
    most: int = BATCH_FILES,
    positions: dict[str, int] | None = None,
    keepalive: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Publish a folder's decisions: its births on the folder's subject, guarded by the folder's
    position (BirthsRefused when it moved), then the per-asset events, pipelined. An asset event
    refused by its expectation was changed by someone since we looked; the next scan sees it.

    `positions` are the positions of the births' folders, read *before* the assets the plan was
    made from: a birth projected in between is then refused, never recorded twice (decision
    0030). Read after, they would let a birth through twice, so there is no default."""
    if not planned:
        return
    births = [e for e, _ in planned if isinstance(e, ev.FilesDiscovered)]
    if births:
        unread = [e.folder for e in births if e.folder not in (positions or {})]
        if unread:
            raise ValueError(f"births planned without their folder's position: {unread[:3]}")
        assert positions is not None
        await asyncio.gather(
            *(publish_births(bus, e, positions[e.folder], most, keepalive) for e in births)
        )
    rest = [p for p in planned if not isinstance(p[0], ev.FilesDiscovered)]
    if rest:
        await pipeline_for(bus.nc).publish(bus, rest)


async def queue_task(js: JetStreamContext, settings: NatsSettings, task: DirTask) -> None:
    """Put a folder task on WORK (de-duplicated by its scan and path)."""
    await js.publish(
        scan_work_subject(settings, task.scan_id),
        WORK_ENCODER.encode(task),
        stream=settings.name("WORK"),
        headers={"Nats-Msg-Id": dir_task_msg_id(task)},
    )
