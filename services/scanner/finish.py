"""Finishing a scan: its backlog on WORK, and recording its end once."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from services.scanner.publish import queue_task
from services.scanner.rules import final_totals
from shared import events as ev
from shared import metrics
from shared.scanprogress import count_once, exact_totals, outstanding, read_progress, roots_queued
from shared.work import DirTask, dir_task_msg_id

if TYPE_CHECKING:
    from services.scanner.handlers import Scanner

log = logging.getLogger(__name__)


async def task_done(
    s: Scanner, task: DirTask, subtasks: list[DirTask], *, folders: int, files: int, problems: int
) -> None:
    """Queue the tasks a scan task leaves to others, then count it in its scan's progress."""
    for sub in subtasks:
        await queue_task(s.js, s.settings.nats, sub)
    metrics.FOLDERS_SCANNED.inc(folders)
    metrics.FILES_SEEN.inc(files)
    metrics.SCAN_PROBLEMS.inc(problems)
    # Counted once per task: a task redone after a lost ack adds nothing again.
    await count_once(
        s.js,
        s.settings.nats,
        task.scan_id,
        dir_task_msg_id(task),
        pending=len(subtasks) - 1,
        dirs_done=folders,
        files_seen=files,
    )


async def scan_backlog(s: Scanner, scan_id: uuid.UUID) -> int:
    """Directory tasks of a scan not yet done (queued, in flight, or done and not yet
    acknowledged); 1 while its start is still queueing root folders (decision 0029)."""
    # Most tasks are not the last: one look at the backlog answers them. Near the end, the
    # flag is read first and the backlog looked at again after it, so roots queued between the
    # two reads are counted.
    left = await outstanding(s.js, s.settings.nats, scan_id)
    if left:
        return left
    if not await roots_queued(s.js, s.settings.nats, scan_id):
        return 1
    return await outstanding(s.js, s.settings.nats, scan_id)


async def finish_scan(s: Scanner, scan_id: uuid.UUID, library_id: uuid.UUID) -> None:
    """Record the scan's end once (the event id is fixed, so replicas that race collapse)."""
    progress = await read_progress(s.js, s.settings.nats, scan_id)
    recorded = await exact_totals(s.js, s.settings.nats, scan_id, at_least_dirs=progress.dirs_done)
    totals = final_totals(progress, recorded)
    if totals is not recorded:
        log.warning(
            "scan %s library %s: %d folder tasks recorded, %d counted; keeping the live count",
            scan_id,
            library_id,
            recorded.dirs,
            progress.dirs_done,
        )
    await s.bus.publish(
        ev.LibraryScanFinished(
            stream_id=library_id,
            scan_id=scan_id,
            event_id=uuid.uuid5(scan_id, "finished"),
            files_seen=totals.files,
            unavailable_import_paths=progress.unavailable,
        )
    )
    log.info("scan %s library %s finished: %d files seen", scan_id, library_id, totals.files)
