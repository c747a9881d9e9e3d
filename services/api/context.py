"""What every request handler needs: settings, the read-model engine, the bus, the waiter."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.object_store import ObjectStore
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import EventBus
from shared.errors import NotReady
from shared.settings import Settings

# Runtime imports on purpose: Litestar resolves these annotations when it builds handlers.


class CheckpointWaiter:
    """Read-your-writes: wait until the projector's checkpoint reaches a stream sequence.

    The projector announces each commit on a core NATS subject; the database checkpoint is
    read too, so a missed announcement costs at most one poll interval.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
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
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT max(seq) FROM projection_checkpoint"))).scalar()
        return int(row or 0)

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


@dataclass
class Context:
    """The API's composition: built once at startup, shared by every request."""

    settings: Settings
    engine: AsyncEngine
    nc: Client
    bus: EventBus
    waiter: CheckpointWaiter
    thumbs: ObjectStore | None = None

    async def settle(self, seq: int) -> None:
        """Wait until the read models include a just-published event (read-your-writes)."""
        await self.waiter.wait(seq, self.settings.read_your_writes_timeout)
