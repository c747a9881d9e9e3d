"""Composition root of the projector process."""

from __future__ import annotations

import asyncio
import logging

from services.projector.app import ProjectionVersionMismatch, Projector
from shared.bus import connect, ensure_streams
from shared.db import create_engine, create_schema
from shared.service import run_service
from shared.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Connect, make sure the schema and streams exist, project until stopped."""
    nc = await connect(settings.nats, "projector")
    engine = create_engine(settings.db.url)
    try:
        await ensure_streams(nc.jetstream(), settings.nats)
        await create_schema(engine)
        projector = Projector(nc, engine, settings.nats)
        log.info("projector: starting")
        try:
            await projector.run(stop)
        except ProjectionVersionMismatch as e:
            log.error("projector: not starting: %s", e)
            raise SystemExit(2) from None
    finally:
        await nc.drain()
        await engine.dispose()


def main() -> None:
    run_service("projector", serve)
