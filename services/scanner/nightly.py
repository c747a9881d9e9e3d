"""The nightly job: a *modified* scan of every library, and finishing stuck deletions."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from croniter import croniter
from nats.js.errors import APIError, KeyWrongLastSequenceError
from sqlalchemy import text

from shared import events as ev

if TYPE_CHECKING:
    from services.scanner.handlers import Scanner

log = logging.getLogger(__name__)


async def nightly_once(scanner: Scanner, run_key: str) -> bool:
    """Run the job once for `run_key` unless another replica has (a KV create is the lease)."""
    kv = await scanner.js.key_value(scanner.settings.nats.name("leases"))
    try:
        await kv.create(f"nightly-{run_key}", b"1")
    except (KeyWrongLastSequenceError, APIError):
        return False
    async with scanner.engine.connect() as conn:
        libraries = (
            await conn.execute(
                text("SELECT id, deleting FROM libraries WHERE type = 'EXTERNAL' OR deleting")
            )
        ).all()
    for row in libraries:
        if row.deleting:
            log.info("nightly: finishing the deletion of library %s", row.id)
            await scanner.finish_deletion(row.id)
        else:
            await scanner.bus.publish(
                ev.LibraryScanRequested(
                    stream_id=row.id,
                    scan_id=uuid.uuid4(),
                    mode=ev.ScanMode.MODIFIED,
                    requested_by="nightly",
                )
            )
    log.info("nightly: %d libraries handled", len(libraries))
    return True


async def run_nightly(scanner: Scanner) -> None:
    """Sleep until each cron time (library.scan.cronExpression), then run the job."""
    cfg = scanner.settings.scan
    if not cfg.enabled:
        return
    schedule = croniter(cfg.cron_expression, datetime.now(UTC))
    while True:
        due: datetime = schedule.get_next(datetime)
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        try:
            await nightly_once(scanner, due.strftime("%Y%m%dT%H%M"))
        except Exception:
            log.exception("nightly job failed; it runs again at the next cron time")
