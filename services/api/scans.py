"""Scan progress as the API shows it: the latest scan run of a library and its problems."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import text

from services.api import schemas as s
from services.api.schemas import iso
from shared.scanprogress import read_progress

if TYPE_CHECKING:
    from services.api.context import Context


async def scan_status(ctx: Context, library_id: uuid.UUID) -> s.LibraryScanStatusDto:
    async with ctx.engine.connect() as conn:
        run = (
            await conn.execute(
                text(
                    "SELECT * FROM scan_runs WHERE library_id = :l "
                    "ORDER BY requested_at DESC LIMIT 1"
                ),
                {"l": library_id},
            )
        ).first()
        if run is None:
            return s.LibraryScanStatusDto(
                scan_id=None, state="never", mode=None, requested_at=None, finished_at=None
            )
        problems = (
            await conn.execute(
                text(
                    "SELECT path, problem, found_at FROM scan_problems WHERE scan_id = :s "
                    "ORDER BY found_at LIMIT 1000"
                ),
                {"s": run.id},
            )
        ).all()
    progress = await read_progress(ctx.nc.jetstream(), ctx.settings.nats, run.id)
    files_seen = run.files_seen if run.state == "finished" else progress.files_seen
    return s.LibraryScanStatusDto(
        scan_id=str(run.id),
        state=run.state,
        mode=run.mode,
        requested_at=iso(run.requested_at),
        finished_at=iso(run.finished_at),
        files_seen=files_seen,
        new=run.new,
        changed=run.changed,
        missing=run.missing,
        failed=run.failed,
        dirs_done=progress.dirs_done,
        dirs_pending=progress.pending,
        unavailable_import_paths=list(run.unavailable_import_paths),
        problems=[
            s.ScanProblemDto(path=p.path, problem=p.problem, found_at=iso(p.found_at) or "")
            for p in problems
        ],
    )
