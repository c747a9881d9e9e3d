"""Read-your-writes for anyone who publishes or reacts to events: wait for the projector."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from shared.errors import NotReady

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from shared.pg import Scalar
    from shared.settings import NatsSettings

__all__ = ["CheckpointWaiter", "checkpoint_subject", "follow_checkpoint"]


def checkpoint_subject(settings: NatsSettings) -> str:
    """Core-NATS subject on which the projector announces each committed checkpoint."""
    return settings.subject("projector", "checkpoint")


async def follow_checkpoint(nc: Client, settings: NatsSettings, query: Scalar) -> CheckpointWaiter:
    """A waiter kept up to date by the projector's announcements, reading the checkpoint
    with `query` (a pool's fetchval, or shared/db.py's `scalar` of an engine)."""
    waiter = CheckpointWaiter(query)
    await nc.subscribe(checkpoint_subject(settings), cb=waiter.on_checkpoint)
    return waiter


class CheckpointWaiter:
    """Read-your-writes: wait until the projector's checkpoint reaches a stream sequence.

    The projector announces each commit on a core NATS subject; the database checkpoint is
    read too, so a missed announcement costs at most one poll interval.
    """

    def __init__(self, query: Scalar) -> None:
        self.query = query
        self.position = 0
        self._changed = asyncio.Condition()

    async def on_checkpoint(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError):
            await self.advance(int(msg.data))

    async def advance(self, seq: int) -> None:
        if seq > self.position:
            self.position = seq
            async with self._changed:
                self._changed.notify_all()

    async def _read(self) -> int:
        return int(await self.query("SELECT max(seq) FROM projection_checkpoint") or 0)

    async def current(self) -> int:
        """The last stream sequence the read models include, as of now."""
        await self.advance(await self._read())
        return self.position

    async def wait(self, seq: int, timeout: float) -> None:
        """Return once the read models include `seq`; NotReady after `timeout` seconds."""
        if self.position >= seq:
            return
        await self.advance(await self._read())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.position < seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NotReady(
                    "The change was recorded but the read models did not catch up within "
                    f"{timeout:g} s; it will show shortly. Is the projector running?"
                )
            try:
                async with self._changed:
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                await self.advance(await self._read())
