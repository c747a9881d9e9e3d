"""What every request handler needs: settings, the read-model engine, the bus, the waiter."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client
from nats.js.object_store import ObjectStore
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import EventBus
from shared.checkpoint import CheckpointWaiter
from shared.settings import Settings

# Runtime imports on purpose: Litestar resolves these annotations when it builds handlers.


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
