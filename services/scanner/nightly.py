"""The nightly job: a *modified* scan of every library, and finishing stuck deletions."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
from croniter import croniter
from nats.js.errors import APIError, KeyWrongLastSequenceError

from shared import events as ev
from shared import sysconfig

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
    libraries = await scanner.db.fetch(
        "SELECT id, deleting FROM libraries WHERE type = 'EXTERNAL' OR deleting"
    )
    for library_id, deleting in libraries:
        if deleting:
            # Asked again of the renditions' owner (the metadata service), which removes them
            # and records LibraryDeleted; once per night, whatever became of the first ask.
            log.info("nightly: finishing the deletion of library %s", library_id)
            await scanner.bus.publish(
                ev.LibraryDeletionStarted(
                    stream_id=library_id, event_id=uuid.uuid5(library_id, f"deletion-{run_key}")
                )
            )
        else:
            await scanner.bus.publish(
                ev.LibraryScanRequested(
                    stream_id=library_id,
                    scan_id=uuid.uuid4(),
                    mode=ev.ScanMode.MODIFIED,
                    requested_by="nightly",
                )
            )
    log.info("nightly: %d libraries handled", len(libraries))
    return True


CONFIG_CHECK = 60.0
"""Seconds between reads of library.scan, so that an admin's change applies without a restart."""


async def run_nightly(scanner: Scanner, check_every: float = CONFIG_CHECK) -> None:
    """Sleep until each cron time of library.scan (enabled, cronExpression), then run the job.

    The configuration is read again at least every `check_every` seconds: an admin who
    disables the job or moves its time is followed by every scanner replica within a minute.
    """
    while True:
        try:
            cfg = (await sysconfig.current(scanner.db.fetchval, scanner.settings.scan)).scan
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
            log.warning("nightly: cannot read the configuration, trying again: %s", e)
            await asyncio.sleep(check_every)
            continue
        if not cfg.enabled:
            await asyncio.sleep(check_every)
            continue
        now = datetime.now(UTC)
        due: datetime = croniter(cfg.cron_expression, now).get_next(datetime)
        wait = (due - now).total_seconds()
        if wait > check_every:
            await asyncio.sleep(check_every)
            continue
        await asyncio.sleep(max(0.0, wait))
        try:
            await nightly_once(scanner, due.strftime("%Y%m%dT%H%M"))
        except Exception:
            log.exception("nightly job failed; it runs again at the next cron time")
