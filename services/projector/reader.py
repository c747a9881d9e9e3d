"""The projector's pull reader: `$JS.API.CONSUMER.MSG.NEXT` requests on an inbox of its own.

nats-py's `fetch` waits for each message on its own (a future, a timer and a uuid4 per
message): three times the CPU per message of this reader, which keeps one pull request
outstanding and gathers what JetStream delivers to its inbox in a list (decision 0033).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

EXPIRES = 0.5  # seconds a pull request waits at the server for its batch
LOST = 2.0  # seconds past its expiry after which a request is taken as lost (a NATS restart)
LOST_IN_A_ROW = 3  # requests lost one after the other: the consumer is taken as gone
GATHER = 0.01  # seconds a fetch waits for more once its first message is in


class ConsumerGone(Exception):
    """JetStream ended a pull request with an error (the consumer was deleted, is not there
    after a NATS restart, or its leader changed): it is created again from the checkpoint."""


class PullReader:
    """Reads a pull consumer in stream order, up to `batch` messages a fetch.

    One request is outstanding at a time (the consumer allows one waiting request): a new one
    goes out as soon as the last is fulfilled or ends, while fewer than two batches wait here,
    so the next batch streams in while the caller works on this one.
    """

    def __init__(self, nc: Client, stream: str, consumer: str, batch: int) -> None:
        self.nc = nc
        self.batch = batch
        self.api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.inbox = nc.new_inbox()
        self.msgs: list[Msg] = []
        self._sub: Subscription | None = None
        self._reply = ""  # the outstanding request's reply subject ("" when none)
        self._owed = 0  # messages the outstanding request may still deliver
        self._deadline = 0.0  # when the outstanding request is taken as lost
        self._requests = 0
        self._lost = 0  # requests lost one after the other
        self._error: str | None = None
        self._woken = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.inbox}.*", cb=self._received)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _received(self, msg: Msg) -> None:
        self._lost = 0
        if msg.reply:  # a message of the stream: its ack subject carries its position
            # Delivered under its own subject, not the request's: it counts against the one
            # request the consumer lets wait (a lost one's deadline passed before the next).
            self.msgs.append(msg)
            if self._reply:
                self._owed -= 1
                if self._owed <= 0:
                    self._ended()
            if len(self.msgs) == 1 or len(self.msgs) >= self.batch:
                self._woken.set()
            return
        status = (msg.headers or {}).get("Status", "")
        if status == "100" or msg.subject != self._reply:
            return  # a heartbeat, or the end of a request already given up
        if status not in ("404", "408"):  # 404 nothing there, 408 expired: a request's end
            description = (msg.headers or {}).get("Description", "")
            self._error = f"{status} {description}".strip()
        self._ended()

    def _ended(self) -> None:
        self._reply = ""
        self._woken.set()
        if len(self.msgs) < self.batch and self._error is None:
            self._request()

    def _request(self) -> None:
        """Ask for a batch, unless a request is outstanding (and not lost)."""
        if self._reply and time.monotonic() < self._deadline:
            return
        if self._reply:
            self._lost += 1
            if self._lost >= LOST_IN_A_ROW:  # nothing answers, not even with an error
                self._error = f"no answer to {self._lost} pull requests in a row"
                self._woken.set()
                return
        self._requests += 1
        self._reply = f"{self.inbox}.{self._requests}"
        self._owed = self.batch
        self._deadline = time.monotonic() + EXPIRES + LOST
        body = msgspec.json.encode({"batch": self.batch, "expires": int(EXPIRES * 1e9)})
        # nats-py buffers a publish while it reconnects; a request lost then is asked again
        # once its deadline has passed.
        task = asyncio.get_running_loop().create_task(self._publish(self._reply, body))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, reply: str, body: bytes) -> None:
        try:
            await self.nc.publish(self.api, body, reply=reply)
        except Exception as e:  # the connection is closing or gone: the deadline asks again
            log.debug("projector: a pull request was not sent: %r", e)

    async def fetch(self, timeout: float = EXPIRES) -> list[Msg]:
        """Up to `batch` messages in delivery order: those here, else the first to arrive
        within `timeout` and what follows it within GATHER; [] when none came.

        Raises ConsumerGone when JetStream ended a request with an error."""
        if self._error is not None:
            raise ConsumerGone(self._error)
        if not self.msgs:
            self._request()
            self._woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout)
            if self._error is not None:
                raise ConsumerGone(self._error)
            if not self.msgs:
                return []
        # More are on their way: a batch as full as a moment allows (each costs a transaction).
        while len(self.msgs) < self.batch and self._reply and self._error is None:
            self._woken.clear()
            try:
                await asyncio.wait_for(self._woken.wait(), GATHER)
            except TimeoutError:
                break
        out = self.msgs[: self.batch]
        del self.msgs[: self.batch]
        if len(self.msgs) < self.batch:
            self._request()
        return out
