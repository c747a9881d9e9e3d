"""A folder task: list one folder, reconcile its files, index it, queue what lies below."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.scanner import probes
from services.scanner.crawl import UPLOAD_FOLDER_SKIPPED, Fence, Listing, Seen, list_dir
from services.scanner.decide import (
    Known,
    Planned,
    ScanContext,
    needs_stat,
    plan_dir,
    plan_offline,
)
from services.scanner.finish import task_done
from services.scanner.publish import publish_planned
from services.scanner.rules import (
    counted,
    index_entry,
    settled,
    subfolder_tasks,
    vanished_children,
)
from shared import events as ev
from shared.globs import MatchTooSlow
from shared.work import DirTask

if TYPE_CHECKING:
    from services.scanner.handlers import LibraryState, Scanner
    from services.scanner.repository import IndexEntry

log = logging.getLogger(__name__)


async def handle_folder_task(
    s: Scanner, task: DirTask, keepalive: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Reconcile one folder and queue its subfolders; `keepalive` tells NATS we still work on
    it (a folder of 100,000 files takes a while)."""
    lib = await s.library(task.library_id)
    if lib is None:
        return
    problems: list[ev.BaseEvent] = []
    listing = Listing()
    stats: list[Seen | None] = []
    reads = await _read_folder(s, task)
    # Task paths are real paths (the listing opens them following no symlink).
    if lib.fence is None or not lib.fence.contains(task.path) or lib.fence.excludes(task.path):
        problems.append(
            ev.ScanProblemFound(
                stream_id=task.library_id,
                scan_id=task.scan_id,
                path=task.path,
                message=UPLOAD_FOLDER_SKIPPED
                if lib.fence is not None and lib.fence.excludes(task.path)
                else "outside the external path; skipped",
            )
        )
    else:
        try:
            # Opened beneath the external path, following no symlink: a folder swapped for a
            # symlink since it was queued is not there (shared/fence.py). Its mtime comes from
            # the listed folder itself, taken before listing: a change during the listing
            # leaves a stale mtime in the index, so the next scan lists it again.
            # Listed, then each file that needs it stat'ed, in one hop to a thread.
            listing, stats = await asyncio.to_thread(_list_and_stat, task, lib.fence, reads.known)
        except FileNotFoundError:
            # The folder went away since it was queued: its files are missing, unless the
            # whole import path went (a drive unplugged mid-scan), which deletes nothing.
            if await asyncio.to_thread(probes.root_lost, lib.fence, task.import_path):
                await _skip_folder(
                    s,
                    task,
                    problems,
                    f"import path {task.import_path} became unavailable during the scan; "
                    "nothing below it was changed. Is the drive mounted?",
                )
                return
        except OSError as err:
            await _skip_folder(s, task, problems, f"cannot read folder: {err.strerror or err}")
            return
        except MatchTooSlow as err:
            # The library's patterns are hostile: its folders stay as they were (nothing
            # imported, nothing offline) until they change; other libraries go on.
            await _skip_folder(s, task, problems, f"folder skipped: {err}")
            return
    try:
        await _reconcile(s, task, lib, listing, stats, reads, problems, keepalive)
    finally:
        listing.close()


@dataclass(frozen=True)
class FolderReads:
    """What the read model says of a folder, read before its listing."""

    positions: dict[str, int]
    known: dict[str, Known]
    index: dict[str, IndexEntry]
    children: set[str]


async def _read_folder(s: Scanner, task: DirTask) -> FolderReads:
    """A folder's reads on one connection. Its position before its assets: births projected
    in between are then in `known`, or after the position, which refuses ours (decision 0030)."""
    async with s.repo.held() as repo:
        positions = await repo.folder_positions(task.library_id, [task.path])
        known = await repo.known(task.library_id, task.path)
        index = await repo.index_near(task.library_id, task.path)
        children = await repo.online_children(task.library_id, task.path)
    return FolderReads(positions, known, index, children)


def _list_and_stat(
    task: DirTask, fence: Fence, known: dict[str, Known]
) -> tuple[Listing, list[Seen | None]]:
    listing = list_dir(task.path, fence, task.import_path)
    try:
        return listing, [
            listing.stat(f) for f in listing.files if needs_stat(task.mode, known.get(f.path))
        ]
    except BaseException:
        listing.close()
        raise


async def _skip_folder(
    s: Scanner, task: DirTask, problems: list[ev.BaseEvent], problem: str
) -> None:
    """Record why a folder was not reconciled; nothing below it changes."""
    problems.append(
        ev.ScanProblemFound(
            stream_id=task.library_id, scan_id=task.scan_id, path=task.path, message=problem
        )
    )
    log.warning("scan %s library %s: %s: %s", task.scan_id, task.library_id, task.path, problem)
    await _after_dir(s, task, [], problems, 0)


async def _reconcile(
    s: Scanner,
    task: DirTask,
    lib: LibraryState,
    listing: Listing,
    stats: list[Seen | None],
    reads: FolderReads,
    problems: list[ev.BaseEvent],
    keepalive: Callable[[], Awaitable[None]] | None,
) -> None:
    ctx = ScanContext(task.scan_id, task.library_id, lib.owner_id, task.mode)
    problems += [
        ev.ScanProblemFound(stream_id=task.library_id, scan_id=task.scan_id, path=p, message=msg)
        for p, msg in listing.problems
    ]
    if keepalive is not None and len(listing.files) > 5000:
        await keepalive()
    known, index = reads.known, reads.index
    seen = [x for x in stats if x]
    seen = settled(task, seen, time.time_ns() // 1_000_000)
    present = [f.path for f in listing.files]
    planned = plan_dir(ctx, known, present, seen, listing.excluded)
    missing, gone = await _missing_subdirs(
        s, ctx, task.path, set(listing.subdirs), index, reads.children
    )
    planned += missing
    await publish_planned(s.bus, planned, s.settings.scan.batch_files, reads.positions, keepalive)
    folder_events: list[ev.BaseEvent] = [
        ev.DirectoryGone(stream_id=task.library_id, path=g, scan_id=task.scan_id) for g in gone
    ]
    entry = index_entry(
        task, listing.mtime_ns, time.time_ns(), lib.patterns_hash, index.get(task.path)
    )
    if entry is not None:
        folder_events.append(entry)
    if folder_events:
        await s.bus.publish_many(folder_events)
    await _after_dir(s, task, subfolder_tasks(task, listing.subdirs, index), problems, len(present))


async def _missing_subdirs(
    s: Scanner,
    ctx: ScanContext,
    folder: str,
    present: set[str],
    index: dict[str, IndexEntry],
    children: set[str],
) -> tuple[list[Planned], list[str]]:
    """Assets in folders below `folder` (whose subfolders holding online assets are
    `children`) that no longer exist go offline at once; returns those events and the vanished
    subfolders the index knew."""
    indexed_gone = [p for p in index if p != folder and p not in present]
    planned: list[Planned] = []
    for child in vanished_children(folder, children, present):
        assets = await s.repo.online_in_tree(ctx.library_id, child)
        planned += plan_offline(ctx, assets, ev.OfflineReason.DELETED)
    return planned, indexed_gone


async def _after_dir(
    s: Scanner,
    task: DirTask,
    subtasks: list[DirTask],
    problems: list[ev.BaseEvent],
    files: int,
) -> None:
    if problems:
        await s.bus.publish_many(problems)
    if not counted(task):
        return
    await task_done(s, task, subtasks, folders=1, files=files, problems=len(problems))
