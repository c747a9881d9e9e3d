"""Composition root of the projector process."""

from __future__ import annotations

import asyncio
import logging

from services.projector.app import ProjectionVersionMismatch, Projector
from shared.bus import connect, ensure_streams
from shared.db import create_engine, create_schema, scalar
from shared.health import Health, beat, database_check, flag_check, nats_check
from shared.service import run_service
from shared.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event, *, health: Health | None = None) -> None:
    """Connect, make sure the schema and streams exist, project until stopped."""
    health = health or Health("projector")
    nc = await connect(settings.nats, "projector")
    engine = create_engine(settings.db.url)
    beating = asyncio.create_task(beat(nc, settings.nats, health, stop))
    try:
        await ensure_streams(nc, settings.nats)
        await create_schema(engine)
        projector = Projector(nc, engine, settings.nats)
        health.add("nats", nats_check(nc))
        health.add("postgres", database_check(scalar(engine), "projection_checkpoint"))
        health.add("consumer", flag_check(lambda: projector.bound, "not reading EVENTS"))
        log.info("projector: starting")
        try:
            await projector.run(stop)
        except ProjectionVersionMismatch as e:
            log.error("projector: not starting: %s", e)
            raise SystemExit(2) from None
    finally:
        stop.set()
        await beating
        await nc.drain()
        await engine.dispose()


def main() -> None:
    run_service("projector", serve)
