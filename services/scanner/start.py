"""Starting a scan: check the import paths, take unreachable assets offline, queue folders."""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
from typing import TYPE_CHECKING

from services.scanner import probes
from services.scanner.decide import Planned, ScanContext, plan_offline
from services.scanner.publish import publish_planned, queue_task
from services.scanner.rules import (
    RETURNING,
    drive_missing,
    offline_reason,
    outermost,
    path_scan_root,
    pruned_tasks,
    root_tasks,
    tree_kind,
)
from shared import events as ev
from shared.importpath import DRIVE_GONE, PathProblem, Unusable, scan_message
from shared.scanprogress import ScanProgress, count_once, update_progress
from shared.work import DirTask, ScanFolder

if TYPE_CHECKING:
    from services.scanner.crawl import Fence
    from services.scanner.handlers import LibraryState, Scanner
    from services.scanner.repository import ImportPathSeen

log = logging.getLogger(__name__)


async def handle_scan_requested(s: Scanner, e: ev.LibraryScanRequested) -> None:
    """Check the import paths, take unreachable assets offline, queue the root folders."""
    library_id = e.stream_id
    lib = await s.library(library_id, fresh=True)
    if lib is None:
        log.info("scan %s: library %s is gone; nothing to do", e.scan_id, library_id)
        return
    if e.path is not None:
        await _start_path_scan(s, e, lib)
        return
    ctx = ScanContext(e.scan_id, library_id, lib.owner_id, e.mode)
    roots: list[tuple[str, str]] = []  # (real path, import path)
    unavailable: list[str] = []
    unavailable_at: list[str] = []  # where the assets of unavailable import paths are
    planned: list[Planned] = []
    problems: list[ev.BaseEvent] = []
    external = lib.fence.root if lib.fence else None
    checked = await asyncio.to_thread(
        probes.check_import_paths, lib.import_paths, external, str(s.settings.upload_path)
    )
    # Where each import path led at the last scan: a symlinked mount point that now dangles
    # still holds its assets there.
    seen = await s.repo.import_paths_seen(library_id)
    for path, real, problem in checked:
        if problem is None and lib.fence is not None:
            problem = await _drive_missing(s, e, lib.fence, path, real, seen.get(path))
        if problem is None:
            roots.append((real, path))
            continue
        unavailable.append(path)
        at = real or (seen[path].real_path if path in seen else None) or posixpath.normpath(path)
        unavailable_at.append(at)
        reason = offline_reason(problem, lib.fence is not None)
        assets = await s.repo.online_under(library_id, at)
        if reason is ev.OfflineReason.IMPORT_PATH_UNAVAILABLE and problem.reason not in DRIVE_GONE:
            problem = PathProblem(reason=problem.reason, detail=problem.detail, held=len(assets))
        message = scan_message(path, problem)
        problems.append(
            ev.ScanProblemFound(stream_id=library_id, scan_id=e.scan_id, path=path, message=message)
        )
        log.warning("scan %s library %s: %s: %s", e.scan_id, library_id, path, message)
        planned += plan_offline(ctx, assets, reason)
    roots = outermost(roots)
    outside = await s.repo.online_outside(library_id, [r for r, _ in roots] + unavailable_at)
    planned += plan_offline(ctx, outside, ev.OfflineReason.OUTSIDE_IMPORT_PATHS)
    await s.bus.publish_many(problems)
    await publish_planned(s.bus, planned, s.settings.scan.batch_files)
    tasks = await _plan_folders(s, e, lib, roots)
    await update_progress(
        s.js,
        s.settings.nats,
        e.scan_id,
        pending=len(tasks),
        unavailable=unavailable,
        init=ScanProgress(library_id=str(library_id), mode=e.mode.value),
        # Set here, not only in `init`: the count of pruned folders may have made the record.
        roots_queued=False,
    )
    for task in tasks:
        await queue_task(s.js, s.settings.nats, task)
    # Until now a task that emptied the subject was not the last: the scan's end is this
    # start's to see if every task is done already (decision 0029).
    await update_progress(s.js, s.settings.nats, e.scan_id, roots_queued=True)
    if await s.scan_backlog(e.scan_id) == 0:
        await s.finish_scan(e.scan_id, library_id)


async def _start_path_scan(s: Scanner, e: ev.LibraryScanRequested, lib: LibraryState) -> None:
    """A scan of one folder (recursively) or of one file's folder: nothing outside it is
    looked at or changed."""
    assert e.path is not None
    external = lib.fence.root if lib.fence else None
    checked = await asyncio.to_thread(
        probes.check_import_paths, lib.import_paths, external, str(s.settings.upload_path)
    )
    target = await asyncio.to_thread(os.path.realpath, e.path)
    root = path_scan_root(checked, target)
    task: DirTask | None = None
    if lib.fence is not None and root is not None:
        # A folder is scanned with everything below it; a file, through its folder alone.
        is_dir = await asyncio.to_thread(probes.is_folder, lib.fence, target)
        kind = tree_kind(e.mode) if is_dir else ScanFolder
        task = kind(
            scan_id=e.scan_id,
            library_id=e.stream_id,
            path=target if is_dir else posixpath.dirname(target),
            import_path=root,
            mode=e.mode,
        )
    else:
        await s.bus.publish(
            ev.ScanProblemFound(
                stream_id=e.stream_id,
                scan_id=e.scan_id,
                path=e.path,
                message="not inside a usable import path; nothing scanned",
            )
        )
    await update_progress(
        s.js,
        s.settings.nats,
        e.scan_id,
        pending=1 if task else 0,
        init=ScanProgress(library_id=str(e.stream_id), mode=e.mode.value),
    )
    if task is None:
        await s.finish_scan(e.scan_id, e.stream_id)
    else:
        await queue_task(s.js, s.settings.nats, task)


async def _drive_missing(
    s: Scanner,
    e: ev.LibraryScanRequested,
    fence: Fence,
    path: str,
    real: str,
    seen: ImportPathSeen | None,
) -> PathProblem | None:
    """Why a usable import path looks like a mount point without its drive (None when it
    does not); records the device it is on otherwise."""
    try:
        probe = await asyncio.to_thread(probes.probe_root, fence, real)
    except OSError as err:
        detail = f"cannot read folder: {err.strerror or err}"
        return PathProblem(reason=Unusable.UNREADABLE, detail=detail)
    held = await s.repo.count_online_under(e.stream_id, real) if probe.empty else 0
    problem = drive_missing(probe, held, seen.device if seen else None)
    if problem is None and not probe.empty and seen != (probe.device, real):
        await s.bus.publish(
            ev.ImportPathSeen(
                stream_id=e.stream_id,
                path=path,
                device=probe.device,
                scan_id=e.scan_id,
                real_path=real,
            )
        )
    return problem


async def _plan_folders(
    s: Scanner, e: ev.LibraryScanRequested, lib: LibraryState, roots: list[tuple[str, str]]
) -> list[DirTask]:
    """The folders to list: every root, recursively; or, for a *new* scan of an indexed
    library, only the folders whose mtime moved (the rest are known unchanged)."""
    full = root_tasks(e.scan_id, e.stream_id, e.mode, roots)
    if e.mode is not ev.ScanMode.NEW or not roots:
        return full
    index = await s.repo.folder_index(e.stream_id)
    tasks = [t for t in full if t.path not in index]  # roots never listed: in full
    indexed_roots = [(r, p) for r, p in roots if r in index]
    if not indexed_roots:
        return tasks
    to_list, same = await asyncio.to_thread(
        probes.unchanged_dirs, index, [r for r, _ in indexed_roots], lib.patterns_hash
    )
    offline_dirs = await s.repo.offline_dirs(e.stream_id, sorted(RETURNING))
    listed, pruned = pruned_tasks(e.scan_id, e.stream_id, indexed_roots, to_list, offline_dirs)
    tasks += pruned
    same = [d for d in same if d not in offline_dirs]
    # The files of unchanged folders are seen too, without listing them.
    unseen = await s.repo.count_online_in(e.stream_id, same)
    await count_once(
        s.js, s.settings.nats, e.scan_id, "start", files_seen=unseen, dirs_done=len(same)
    )
    log.info(
        "scan %s library %s: %d folders unchanged, %d to list",
        e.scan_id,
        e.stream_id,
        len(same),
        len(listed),
    )
    return tasks
