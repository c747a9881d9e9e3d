"""The scanner's handlers: plan a scan, reconcile one directory, finish scans and deletions."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import posixpath
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.js.errors import NotFoundError, ObjectNotFoundError
from sqlalchemy import text

from services.scanner.crawl import UPLOAD_FOLDER_SKIPPED, Fence, Listing, list_dir
from services.scanner.decide import (
    Known,
    Planned,
    RootProbe,
    ScanContext,
    drive_missing,
    needs_stat,
    plan_dir,
    plan_offline,
)
from services.scanner.publish import publish_planned
from shared import events as ev
from shared import metrics
from shared.bus import EventBus
from shared.db import like_prefix
from shared.globs import ExclusionMatcher, MatchTooSlow
from shared.media import is_hidden
from shared.paths import validate_import_path, within
from shared.scanprogress import (
    ScanProgress,
    TaskDone,
    count_once,
    exact_totals,
    outstanding,
    read_progress,
    roots_queued,
    update_progress,
)
from shared.work import WORK_ENCODER, DirTask, dir_task_msg_id, scan_work_subject

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.object_store import ObjectStore
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.settings import Settings

log = logging.getLogger(__name__)


# A folder whose mtime is this close to the moment it was listed may change again within the
# file system's clock granularity without its mtime moving: it is indexed as "always re-list".
MTIME_GUARD_NS = 2_000_000_000


def patterns_hash(patterns: list[str] | tuple[str, ...]) -> str:
    """Identifies a set of exclusion patterns; a change invalidates the folder index."""
    return hashlib.sha1("\n".join(patterns).encode()).hexdigest()


def check_import_paths(
    paths: tuple[str, ...], external: str | None, upload_root: str | None = None
) -> list[tuple[str, str, str | None]]:
    """Blocking: (import path, real path, why it is unusable or None) for each import path."""
    out = []
    for path in paths:
        message = validate_import_path(path, external, upload_root)
        out.append((path, os.path.realpath(path) if message is None else "", message))
    return out


RETURNING = frozenset(
    {ev.OfflineReason.DELETED.value, ev.OfflineReason.IMPORT_PATH_UNAVAILABLE.value}
)
"""Offline reasons whose files can come back without their folder's mtime moving."""


def device_of(path: str) -> int:
    """The file system a folder is on (`st_dev`); tests stand in for a mounted drive here."""
    return os.stat(path).st_dev


def probe_root(fence: Fence, real: str) -> RootProbe:
    """Blocking: whether a usable import path is empty, and its device and its parent's."""
    with fence.files.open_dir(real) as opened, os.scandir(opened.fd) as it:
        empty = not any(not is_hidden(entry.name) for entry in it)
    return RootProbe(empty, device_of(real), device_of(posixpath.dirname(real)))


def root_lost(fence: Fence, import_path: str) -> bool:
    """Blocking: whether an import path is gone or empty now (its drive was unplugged)."""
    try:
        return probe_root(fence, os.path.realpath(import_path)).empty
    except OSError:
        return True


def unchanged_dirs(
    index: dict[str, tuple[int, str]], roots: list[str], current_hash: str
) -> tuple[list[str], list[str]]:
    """Blocking: stat every indexed folder under `roots`; return (to list, unchanged).

    A folder whose mtime and patterns hash match its index entry has the same entries as when
    it was listed (adding, removing or renaming an entry changes a folder's mtime), so a *new*
    scan does not list it. A vanished folder is left to its parent, whose mtime changed.
    """
    to_list: list[str] = []
    same: list[str] = []
    for path, (mtime_ns, phash) in index.items():
        if not any(within(r, path) for r in roots):
            continue
        try:
            # Only a decision to list is taken on this stat (listing goes through the fence);
            # a folder swapped for a symlink shows the link's own mtime, so it is listed, and
            # the listing finds it gone.
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if mtime_ns and st.st_mtime_ns == mtime_ns and phash == current_hash:
            same.append(path)
        else:
            to_list.append(path)
    return to_list, same


@dataclass(frozen=True)
class LibraryState:
    """What a directory task needs to know about its library, loaded once per scan."""

    owner_id: uuid.UUID
    import_paths: tuple[str, ...]
    fence: Fence | None
    patterns_hash: str


class Scanner:
    """Scans libraries; any number of replicas share the work through the WORK stream."""

    def __init__(self, nc: Client, engine: AsyncEngine, settings: Settings) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.engine = engine
        self.settings = settings
        self.bus = EventBus(nc, settings.nats)
        self._libraries: dict[uuid.UUID, LibraryState] = {}
        self._thumbs: ObjectStore | None = None

    # --- starting a scan ------------------------------------------------------------------

    async def _library(self, library_id: uuid.UUID, *, fresh: bool = False) -> LibraryState | None:
        if not fresh and library_id in self._libraries:
            return self._libraries[library_id]
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT l.owner_id, l.import_paths, l.exclusion_patterns, l.deleting, "
                        "u.external_path FROM libraries l JOIN users u ON u.id = l.owner_id "
                        "WHERE l.id = :id"
                    ),
                    {"id": library_id},
                )
            ).first()
        if row is None or row.deleting:
            self._libraries.pop(library_id, None)
            return None
        fence = None
        if row.external_path:
            # In a thread: resolving a path on a hung network mount must not stall the loop.
            real = await asyncio.to_thread(os.path.realpath, row.external_path)
            upload = await asyncio.to_thread(os.path.realpath, self.settings.upload_path)
            # Compiling a library's patterns can take a while (up to a second at the API's
            # bounds, longer for patterns stored before them): not on the loop either.
            matcher = await asyncio.to_thread(ExclusionMatcher, list(row.exclusion_patterns))
            fence = Fence(real, matcher, excluded_roots=(upload,))
        state = LibraryState(
            row.owner_id,
            tuple(row.import_paths),
            fence,
            patterns_hash(list(row.exclusion_patterns)),
        )
        if len(self._libraries) > 256:
            self._libraries.clear()
        self._libraries[library_id] = state
        return state

    async def start_scan(self, e: ev.LibraryScanRequested) -> None:
        """Check the import paths, take unreachable assets offline, queue the root folders."""
        library_id = e.stream_id
        lib = await self._library(library_id, fresh=True)
        if lib is None:
            log.info("scan %s: library %s is gone; nothing to do", e.scan_id, library_id)
            return
        if e.path is not None:
            await self._start_path_scan(e, lib)
            return
        ctx = ScanContext(e.scan_id, library_id, lib.owner_id, e.mode)
        roots: list[tuple[str, str]] = []  # (real path, import path)
        unavailable: list[str] = []
        planned: list[Planned] = []
        problems: list[ev.BaseEvent] = []
        external = lib.fence.root if lib.fence else None
        checked = await asyncio.to_thread(
            check_import_paths, lib.import_paths, external, str(self.settings.upload_path)
        )
        async with self.engine.connect() as conn:
            # Where each import path led at the last scan: a symlinked mount point that now
            # dangles still holds its assets there.
            led_to = {
                r.path: r.real_path
                for r in await conn.execute(
                    text("SELECT path, real_path FROM library_import_paths WHERE library_id = :l"),
                    {"l": library_id},
                )
                if r.real_path
            }
        unavailable_at: list[str] = []  # where the assets of unavailable import paths are
        for path, real, message in checked:
            missing_drive = None
            if message is None and lib.fence is not None:
                message = missing_drive = await self._drive_missing(e, lib.fence, path, real)
            if message is None:
                roots.append((real, path))
                continue
            unavailable.append(path)
            at = real or led_to.get(path) or posixpath.normpath(path)
            unavailable_at.append(at)
            outside = lib.fence is None or "outside" in message or "external path" in message
            reason = (
                ev.OfflineReason.OUTSIDE_EXTERNAL_PATH
                if outside
                else ev.OfflineReason.IMPORT_PATH_UNAVAILABLE
            )
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT id, last_seq FROM assets WHERE library_id = :l "
                            "AND NOT is_offline AND original_path LIKE :p"
                        ),
                        {"l": library_id, "p": like_prefix(at)},
                    )
                ).all()
            if rows and reason is ev.OfflineReason.IMPORT_PATH_UNAVAILABLE and not missing_drive:
                message += (
                    f"; it held {len(rows):,} files at the last scan. Is the drive mounted? "
                    "Its assets stay, offline, until it is back"
                )
            problems.append(
                ev.ScanProblemFound(
                    stream_id=library_id,
                    scan_id=e.scan_id,
                    path=path,
                    message=f"import path unavailable: {message}",
                )
            )
            log.warning(
                "scan %s library %s: import path %s unavailable: %s",
                e.scan_id,
                library_id,
                path,
                message,
            )
            planned += plan_offline(ctx, [(r.id, r.last_seq) for r in rows], reason)
        # A folder inside another import path is walked once, as part of the outer one.
        roots = [(r, p) for r, p in roots if not any(r != o and within(o, r) for o, _ in roots)]
        roots = list({r: (r, p) for r, p in roots}.values())
        covered = [r for r, _ in roots] + unavailable_at
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, last_seq FROM assets WHERE library_id = :l AND NOT is_offline "
                        "AND NOT (original_path LIKE ANY(:prefixes))"
                    ),
                    {"l": library_id, "prefixes": [like_prefix(c) for c in covered] or ["\\"]},
                )
            ).all()
        planned += plan_offline(
            ctx, [(r.id, r.last_seq) for r in rows], ev.OfflineReason.OUTSIDE_IMPORT_PATHS
        )
        await self.bus.publish_many(problems)
        await self._publish(planned)
        tasks = await self._plan_folders(e, lib, roots)
        await update_progress(
            self.js,
            self.settings.nats,
            e.scan_id,
            pending=len(tasks),
            unavailable=unavailable,
            init=ScanProgress(library_id=str(library_id), mode=e.mode.value, roots_queued=False),
        )
        for task in tasks:
            await self._queue(task)
        # Until now a task that emptied the subject was not the last: the scan's end is this
        # start's to see if every task is done already.
        await update_progress(self.js, self.settings.nats, e.scan_id, roots_queued=True)
        if await self.scan_backlog(e.scan_id) == 0:
            await self.finish_scan(e.scan_id, library_id)

    async def _start_path_scan(self, e: ev.LibraryScanRequested, lib: LibraryState) -> None:
        """A scan of one folder (recursively) or of one file's folder: nothing outside it is
        looked at or changed."""
        assert e.path is not None
        external = lib.fence.root if lib.fence else None
        checked = await asyncio.to_thread(
            check_import_paths, lib.import_paths, external, str(self.settings.upload_path)
        )
        target = await asyncio.to_thread(os.path.realpath, e.path)
        root = next(
            (p for p, real, message in checked if message is None and within(real, target)), None
        )
        task = None
        if lib.fence is not None and root is not None:
            try:
                st = await asyncio.to_thread(lib.fence.files.stat, target)
                is_dir = stat.S_ISDIR(st.st_mode)
            except FileNotFoundError:
                is_dir = True  # a folder gone since it was asked for: its files are missing
            except OSError:
                is_dir = False
            task = DirTask(
                scan_id=e.scan_id,
                library_id=e.stream_id,
                path=target if is_dir else posixpath.dirname(target),
                import_path=root,
                mode=e.mode,
                recursive=is_dir,
            )
        else:
            await self.bus.publish(
                ev.ScanProblemFound(
                    stream_id=e.stream_id,
                    scan_id=e.scan_id,
                    path=e.path,
                    message="not inside a usable import path; nothing scanned",
                )
            )
        await update_progress(
            self.js,
            self.settings.nats,
            e.scan_id,
            pending=1 if task else 0,
            init=ScanProgress(library_id=str(e.stream_id), mode=e.mode.value),
        )
        if task is None:
            await self.finish_scan(e.scan_id, e.stream_id)
        else:
            await self._queue(task)

    async def _drive_missing(
        self, e: ev.LibraryScanRequested, fence: Fence, path: str, real: str
    ) -> str | None:
        """Why a usable import path looks like a mount point without its drive (None when it
        does not); records the device it is on otherwise."""
        try:
            probe = await asyncio.to_thread(probe_root, fence, real)
        except OSError as err:
            return f"cannot read folder: {err.strerror or err}"
        async with self.engine.connect() as conn:
            seen = (
                await conn.execute(
                    text(
                        "SELECT device, real_path FROM library_import_paths "
                        "WHERE library_id = :l AND path = :p"
                    ),
                    {"l": e.stream_id, "p": path},
                )
            ).first()
            held = 0
            if probe.empty:
                held = int(
                    (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM assets WHERE library_id = :l "
                                "AND NOT is_offline AND original_path LIKE :p"
                            ),
                            {"l": e.stream_id, "p": like_prefix(real)},
                        )
                    ).scalar()
                    or 0
                )
        message = drive_missing(path, probe, held, seen.device if seen else None)
        if message is None and not probe.empty and seen != (probe.device, real):
            await self.bus.publish(
                ev.ImportPathSeen(
                    stream_id=e.stream_id,
                    path=path,
                    device=probe.device,
                    scan_id=e.scan_id,
                    real_path=real,
                )
            )
        return message

    async def _plan_folders(
        self, e: ev.LibraryScanRequested, lib: LibraryState, roots: list[tuple[str, str]]
    ) -> list[DirTask]:
        """The folders to list: every root, recursively; or, for a *new* scan of an indexed
        library, only the folders whose mtime moved (the rest are known unchanged)."""
        full = [
            DirTask(
                scan_id=e.scan_id,
                library_id=e.stream_id,
                path=real,
                import_path=import_path,
                mode=e.mode,
            )
            for real, import_path in roots
        ]
        if e.mode is not ev.ScanMode.NEW or not roots:
            return full
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT path, mtime_ns, patterns_hash FROM library_dirs "
                        "WHERE library_id = :l"
                    ),
                    {"l": e.stream_id},
                )
            ).all()
        index = {r.path: (r.mtime_ns, r.patterns_hash) for r in rows}
        tasks = [t for t in full if t.path not in index]  # roots never listed: in full
        indexed_roots = [(r, p) for r, p in roots if r in index]
        if indexed_roots:
            to_list, same = await asyncio.to_thread(
                unchanged_dirs, index, [r for r, _ in indexed_roots], lib.patterns_hash
            )
            # A folder with offline assets is listed whatever its mtime: a drive plugged in
            # again, or a folder renamed away and back, brings its folders back with the
            # mtimes they had, and their files must come back too.
            async with self.engine.connect() as conn:
                result = await conn.execute(
                    text(
                        "SELECT DISTINCT dir FROM assets WHERE library_id = :l "
                        "AND is_offline AND offline_reason = ANY(:reasons)"
                    ),
                    {"l": e.stream_id, "reasons": sorted(RETURNING)},
                )
                offline_dirs = {
                    row.dir for row in result if any(within(r, row.dir) for r, _ in indexed_roots)
                }
            if offline_dirs:
                to_list = [*to_list, *sorted(offline_dirs - set(to_list))]
                same = [d for d in same if d not in offline_dirs]
            import_path_of = dict(indexed_roots)
            for path in to_list:
                root = next((r for r in import_path_of if within(r, path)), path)
                tasks.append(
                    DirTask(
                        scan_id=e.scan_id,
                        library_id=e.stream_id,
                        path=path,
                        import_path=import_path_of.get(root, root),
                        mode=e.mode,
                        skip_indexed=True,
                    )
                )
            # The files of unchanged folders are seen too, without listing them.
            async with self.engine.connect() as conn:
                unseen = int(
                    (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM assets WHERE library_id = :l "
                                "AND NOT is_offline "
                                "AND dir = ANY(:dirs)"
                            ),
                            {"l": e.stream_id, "dirs": same},
                        )
                    ).scalar()
                    or 0
                )
            await count_once(
                self.js,
                self.settings.nats,
                e.scan_id,
                "start",
                files_seen=unseen,
                dirs_done=len(same),
            )
            log.info(
                "scan %s library %s: %d folders unchanged, %d to list",
                e.scan_id,
                e.stream_id,
                len(same),
                len(to_list),
            )
        return tasks

    async def _queue(self, task: DirTask) -> None:
        await self.js.publish(
            scan_work_subject(self.settings.nats, task.scan_id),
            WORK_ENCODER.encode(task),
            stream=self.settings.nats.name("WORK"),
            headers={"Nats-Msg-Id": dir_task_msg_id(task)},
        )

    async def _publish(self, planned: list[Planned]) -> None:
        """Publish decisions, pipelined (services/scanner/publish.py)."""
        await publish_planned(self.bus, planned)

    # --- one directory --------------------------------------------------------------------

    async def run_dir(
        self, task: DirTask, keepalive: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Reconcile one folder and queue its subfolders; `keepalive` tells NATS we still
        work on it (a folder of 100,000 files takes a while)."""
        lib = await self._library(task.library_id)
        if lib is None:
            return
        ctx = ScanContext(task.scan_id, task.library_id, lib.owner_id, task.mode)
        problems: list[ev.BaseEvent] = []
        listing = Listing()
        dir_mtime_ns: int | None = None
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
                # Opened beneath the external path, following no symlink: a folder swapped
                # for a symlink since it was queued is not there (shared/fence.py). Its mtime
                # comes from the listed folder itself, taken before listing: a change during
                # the listing leaves a stale mtime in the index, so the next scan lists it again.
                listing = await asyncio.to_thread(list_dir, task.path, lib.fence, task.import_path)
                dir_mtime_ns = listing.mtime_ns
            except FileNotFoundError:
                # The folder went away since it was queued: its files are missing, unless the
                # whole import path went (a drive unplugged mid-scan), which deletes nothing.
                if await asyncio.to_thread(root_lost, lib.fence, task.import_path):
                    await self._skip_folder(
                        task,
                        problems,
                        f"import path {task.import_path} became unavailable during the scan; "
                        "nothing below it was changed. Is the drive mounted?",
                    )
                    return
            except OSError as err:
                await self._skip_folder(
                    task, problems, f"cannot read folder: {err.strerror or err}"
                )
                return
            except MatchTooSlow as err:
                # The library's patterns are hostile: its folders stay as they were (nothing
                # imported, nothing offline) until they change; other libraries go on.
                await self._skip_folder(task, problems, f"folder skipped: {err}")
                return
        try:
            await self._reconcile(task, lib, ctx, listing, problems, dir_mtime_ns, keepalive)
        finally:
            listing.close()

    async def _skip_folder(self, task: DirTask, problems: list[ev.BaseEvent], problem: str) -> None:
        """Record why a folder was not reconciled; nothing below it changes."""
        problems.append(
            ev.ScanProblemFound(
                stream_id=task.library_id, scan_id=task.scan_id, path=task.path, message=problem
            )
        )
        log.warning("scan %s library %s: %s: %s", task.scan_id, task.library_id, task.path, problem)
        await self._after_dir(task, [], problems, 0)

    async def _reconcile(
        self,
        task: DirTask,
        lib: LibraryState,
        ctx: ScanContext,
        listing: Listing,
        problems: list[ev.BaseEvent],
        dir_mtime_ns: int | None,
        keepalive: Callable[[], Awaitable[None]] | None,
    ) -> None:
        problems += [
            ev.ScanProblemFound(
                stream_id=task.library_id, scan_id=task.scan_id, path=p, message=msg
            )
            for p, msg in listing.problems
        ]
        if keepalive is not None and len(listing.files) > 5000:
            await keepalive()
        known = await self._known(task.library_id, task.path)
        to_stat = [f for f in listing.files if needs_stat(task.mode, known.get(f.path))]
        seen = [s for s in await asyncio.to_thread(lambda: [listing.stat(p) for p in to_stat]) if s]
        if task.settle_ms:
            # A watch task may list a file that is still being written (its folder settled
            # for another entry): leave it alone (present, not re-read); the watcher sends
            # another task once that file has settled.
            fresh_after = time.time_ns() // 1_000_000 - task.settle_ms
            seen = [s for s in seen if s.mtime_ms <= fresh_after]
        present = [f.path for f in listing.files]
        planned = plan_dir(ctx, known, present, seen, listing.excluded)
        index = await self._index_near(task.library_id, task.path)
        missing, gone = await self._missing_subdirs(ctx, task.path, set(listing.subdirs), index)
        planned += missing
        await self._publish(planned)
        folder_events: list[ev.BaseEvent] = [
            ev.DirectoryGone(stream_id=task.library_id, path=g, scan_id=task.scan_id) for g in gone
        ]
        if dir_mtime_ns is not None:
            recorded = dir_mtime_ns if time.time_ns() - dir_mtime_ns > MTIME_GUARD_NS else 0
            if index.get(task.path) != (recorded, lib.patterns_hash):
                folder_events.append(
                    ev.DirectoryIndexed(
                        stream_id=task.library_id,
                        path=task.path,
                        mtime_ns=recorded,
                        patterns_hash=lib.patterns_hash,
                        scan_id=task.scan_id,
                    )
                )
        if folder_events:
            await self.bus.publish_many(folder_events)
        subdirs = listing.subdirs
        if task.skip_indexed:
            subdirs = [d for d in subdirs if d not in index]
        await self._after_dir(task, subdirs, problems, len(listing.files))

    async def _after_dir(
        self, task: DirTask, subdirs: list[str], problems: list[ev.BaseEvent], files: int
    ) -> None:
        if problems:
            await self.bus.publish_many(problems)
        if task.watch:
            return
        for sub in subdirs if task.recursive else []:
            await self._queue(
                DirTask(
                    scan_id=task.scan_id,
                    library_id=task.library_id,
                    path=sub,
                    import_path=task.import_path,
                    mode=task.mode,
                )
            )
        metrics.FOLDERS_SCANNED.inc()
        metrics.FILES_SEEN.inc(files)
        metrics.SCAN_PROBLEMS.inc(len(problems))
        # Counted once per task: a task redone after a lost ack adds nothing again.
        await count_once(
            self.js,
            self.settings.nats,
            task.scan_id,
            dir_task_msg_id(task),
            pending=(len(subdirs) if task.recursive else 0) - 1,
            dirs_done=1,
            files_seen=files,
        )

    async def _known(self, library_id: uuid.UUID, directory: str) -> dict[str, Known]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, original_path, file_modified_at, is_offline, last_seq, "
                        "sidecar_mtime_ms, offline_reason FROM assets "
                        "WHERE library_id = :l AND dir = :d"
                    ),
                    {"l": library_id, "d": directory},
                )
            ).all()
        return {
            r.original_path: Known(
                r.id,
                r.original_path,
                int(r.file_modified_at.timestamp() * 1000 + 0.5) // 1,
                r.is_offline,
                r.last_seq,
                r.sidecar_mtime_ms,
                r.offline_reason,
            )
            for r in rows
        }

    async def _index_near(
        self, library_id: uuid.UUID, directory: str
    ) -> dict[str, tuple[int, str]]:
        """Index entries of a folder and of its direct subfolders."""
        base = directory.rstrip("/") + "/"
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT path, mtime_ns, patterns_hash FROM library_dirs "
                        "WHERE library_id = :l "
                        "AND (path = :d OR (path LIKE :p AND strpos(substr(path, :n), '/') = 0))"
                    ),
                    {
                        "l": library_id,
                        "d": directory,
                        "p": like_prefix(directory),
                        "n": len(base) + 1,
                    },
                )
            ).all()
        return {r.path: (r.mtime_ns, r.patterns_hash) for r in rows}

    async def _missing_subdirs(
        self,
        ctx: ScanContext,
        directory: str,
        present: set[str],
        index: dict[str, tuple[int, str]],
    ) -> tuple[list[Planned], list[str]]:
        """Assets in folders below `directory` that no longer exist go offline at once;
        returns those events and the vanished subfolders the index knew."""
        base = directory.rstrip("/") + "/"
        indexed_gone = [p for p in index if p != directory and p not in present]
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT DISTINCT split_part(substr(dir, :n), '/', 1) AS child FROM assets "
                        "WHERE library_id = :l AND dir LIKE :p AND NOT is_offline"
                    ),
                    {"l": ctx.library_id, "p": like_prefix(directory), "n": len(base) + 1},
                )
            ).all()
            gone = [base + r.child for r in rows if base + r.child not in present]
            planned: list[Planned] = []
            for child in gone:
                assets = (
                    await conn.execute(
                        text(
                            "SELECT id, last_seq FROM assets WHERE library_id = :l "
                            "AND NOT is_offline "
                            "AND (dir = :d OR dir LIKE :p)"
                        ),
                        {"l": ctx.library_id, "d": child, "p": like_prefix(child)},
                    )
                ).all()
                planned += plan_offline(
                    ctx, [(a.id, a.last_seq) for a in assets], ev.OfflineReason.DELETED
                )
        return planned, indexed_gone

    # --- finishing ------------------------------------------------------------------------

    async def scan_backlog(self, scan_id: uuid.UUID) -> int:
        """Directory tasks of a scan not yet done (queued, in flight, or done and not yet
        acknowledged); 1 while its start is still queueing root folders."""
        if not await roots_queued(self.js, self.settings.nats, scan_id):
            return 1
        return await outstanding(self.js, self.settings.nats, scan_id)

    async def finish_scan(self, scan_id: uuid.UUID, library_id: uuid.UUID) -> None:
        """Record the scan's end once (the event id is fixed, so replicas that race collapse)."""
        progress = await read_progress(self.js, self.settings.nats, scan_id)
        totals = await exact_totals(
            self.js, self.settings.nats, scan_id, at_least_dirs=progress.dirs_done
        )
        if totals.dirs < progress.dirs_done:
            log.warning(
                "scan %s: %d folder tasks recorded, %d counted; keeping the live count",
                scan_id,
                totals.dirs,
                progress.dirs_done,
            )
            totals = TaskDone(dirs=progress.dirs_done, files=max(totals.files, progress.files_seen))
        await self.bus.publish(
            ev.LibraryScanFinished(
                stream_id=library_id,
                scan_id=scan_id,
                event_id=uuid.uuid5(scan_id, "finished"),
                files_seen=totals.files,
                unavailable_import_paths=progress.unavailable,
            )
        )
        log.info("scan %s library %s finished: %d files seen", scan_id, library_id, totals.files)

    # --- deleting a library ---------------------------------------------------------------

    async def finish_deletion(self, library_id: uuid.UUID) -> None:
        """Remove a deleted library's thumbnails in batches, then record LibraryDeleted."""
        if self._thumbs is None:
            self._thumbs = await self.js.object_store(self.settings.nats.name("thumbs"))
        async with self.engine.connect() as conn:
            keys = (
                await conn.execute(
                    text(
                        "SELECT thumbnail_key, preview_key FROM assets WHERE library_id = :l "
                        "AND (thumbnail_key IS NOT NULL OR preview_key IS NOT NULL)"
                    ),
                    {"l": library_id},
                )
            ).all()
        for row in keys:
            for key in (row.thumbnail_key, row.preview_key):
                if key:
                    with contextlib.suppress(ObjectNotFoundError, NotFoundError):
                        await self._thumbs.delete(key)  # already gone is fine
        await self.bus.publish(
            ev.LibraryDeleted(stream_id=library_id, event_id=uuid.uuid5(library_id, "deleted"))
        )
        self._libraries.pop(library_id, None)
        log.info("library %s deleted (%d thumbnails removed)", library_id, len(keys))
