"""What a scan decides besides per-file events: import paths, folders to queue, its end (pure)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from shared import events as ev
from shared.importpath import FENCED_OUT, PathProblem, Unusable
from shared.paths import within
from shared.scanprogress import ScanProgress, TaskDone
from shared.work import DirTask, ScanPruned, ScanSubtree, ScanTree, WatchFolder

if TYPE_CHECKING:
    from services.scanner.crawl import Seen

# A folder whose mtime is this close to the moment it was listed may change again within the
# file system's clock granularity without its mtime moving: it is indexed as "always re-list".
MTIME_GUARD_NS = 2_000_000_000

RETURNING = frozenset(
    {ev.OfflineReason.DELETED.value, ev.OfflineReason.IMPORT_PATH_UNAVAILABLE.value}
)
"""Offline reasons whose files can come back without their folder's mtime moving."""


def patterns_hash(patterns: Iterable[str]) -> str:
    """Identifies a set of exclusion patterns; a change invalidates the folder index."""
    return hashlib.sha1("\n".join(patterns).encode()).hexdigest()


# --- import paths -------------------------------------------------------------------------


class RootProbe(NamedTuple):
    """What a scan saw of a usable import path before listing it."""

    empty: bool
    device: int
    parent_device: int


def drive_missing(probe: RootProbe, held: int, recorded_device: int | None) -> PathProblem | None:
    """Why an import path that exists looks like a mount point without its drive, or None.

    Linux leaves the mount point behind, empty, when a drive is unplugged: taking that for
    "every file deleted" is how Immich trashed whole libraries. So an import path is
    unavailable, not emptied, when it is empty but held files at the last scan, or when it was
    seen on a device of its own and now sits on its parent's.
    """
    if probe.empty and held:
        return PathProblem(reason=Unusable.EMPTY_BUT_HELD_FILES, held=held)
    if (
        recorded_device is not None
        and recorded_device != probe.parent_device
        and probe.device == probe.parent_device
    ):
        return PathProblem(reason=Unusable.UNMOUNTED)
    return None


def offline_reason(problem: PathProblem, fenced: bool) -> ev.OfflineReason:
    """Why the assets of an unusable import path go offline: the library may not read there
    (no fence, or outside it), or the path is not there now."""
    if not fenced or problem.reason in FENCED_OUT:
        return ev.OfflineReason.OUTSIDE_EXTERNAL_PATH
    return ev.OfflineReason.IMPORT_PATH_UNAVAILABLE


def outermost(roots: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(real path, import path) pairs to walk: a folder inside another import path is walked
    once, as part of the outer one, and two import paths leading to one folder once."""
    kept = [(r, p) for r, p in roots if not any(r != o and within(o, r) for o, _ in roots)]
    return list({r: (r, p) for r, p in kept}.values())


def path_scan_root(
    checked: Iterable[tuple[str, str, PathProblem | None]], target: str
) -> str | None:
    """The usable import path a scan of one folder or file lies in (None: nothing to scan)."""
    return next(
        (path for path, real, problem in checked if problem is None and within(real, target)),
        None,
    )


# --- folders to queue ---------------------------------------------------------------------


def tree_kind(mode: ev.ScanMode) -> type[ScanTree | ScanSubtree]:
    """How a folder and everything below it is walked: a *modified* or *force* scan stats
    every file, so it walks whole subtrees per task (one stat and a comparison per unchanged
    file); a *new* scan lists folders one task each, and indexes them for the next."""
    return ScanTree if mode is ev.ScanMode.NEW else ScanSubtree


def root_tasks(
    scan_id: uuid.UUID, library_id: uuid.UUID, mode: ev.ScanMode, roots: list[tuple[str, str]]
) -> list[DirTask]:
    """A full walk: one tree (or subtree) task per import path."""
    kind = tree_kind(mode)
    return [
        kind(scan_id=scan_id, library_id=library_id, path=r, import_path=p, mode=mode)
        for r, p in roots
    ]


def pruned_tasks(
    scan_id: uuid.UUID,
    library_id: uuid.UUID,
    roots: list[tuple[str, str]],
    to_list: list[str],
    offline_dirs: set[str],
) -> tuple[list[str], list[DirTask]]:
    """A *new* scan of indexed roots: the folders to list are those whose mtime moved, and
    every folder holding offline assets whatever its mtime (a drive plugged in again, or a
    folder renamed away and back, brings its folders back with the mtimes they had, and their
    files must come back too). Returns the folders listed and their tasks."""
    listed = [*to_list, *sorted(d for d in offline_dirs - set(to_list) if _under(roots, d))]
    import_path_of = dict(roots)
    tasks: list[DirTask] = []
    for path in listed:
        root = next((r for r in import_path_of if within(r, path)), path)
        tasks.append(
            ScanPruned(
                scan_id=scan_id,
                library_id=library_id,
                path=path,
                import_path=import_path_of.get(root, root),
                mode=ev.ScanMode.NEW,
            )
        )
    return listed, tasks


def _under(roots: list[tuple[str, str]], path: str) -> bool:
    return any(within(r, path) for r, _ in roots)


def subfolder_tasks(task: DirTask, subdirs: list[str], indexed: Iterable[str]) -> list[DirTask]:
    """The subfolders a folder task queues: all for a tree, those the index does not know for
    a pruned scan (the others were checked at its start), none for a single folder."""
    if isinstance(task, ScanPruned):
        known = set(indexed)
        subdirs = [d for d in subdirs if d not in known]
    elif not isinstance(task, ScanTree):
        return []
    return tasks_below(task, ScanTree, subdirs)


def tasks_below(
    task: DirTask, kind: type[ScanTree | ScanSubtree], folders: list[str]
) -> list[DirTask]:
    """Tasks of `kind` for folders below a task's own, in its scan and import path."""
    return [
        kind(
            scan_id=task.scan_id,
            library_id=task.library_id,
            path=folder,
            import_path=task.import_path,
            mode=task.mode,
        )
        for folder in folders
    ]


def counted(task: DirTask) -> bool:
    """Whether a task belongs to a scan run whose progress is counted and which it may end."""
    return not isinstance(task, WatchFolder)


# --- one folder ---------------------------------------------------------------------------


def settled(task: DirTask, seen: list[Seen], now_ms: int) -> list[Seen]:
    """A watch task may list a file still being written (its folder settled for another
    entry): that file is left alone (present, not re-read) until the watcher asks again."""
    if not isinstance(task, WatchFolder) or not task.settle_ms:
        return seen
    fresh_after = now_ms - task.settle_ms
    return [s for s in seen if s.mtime_ms <= fresh_after]


def index_entry(
    task: DirTask,
    mtime_ns: int | None,
    now_ns: int,
    current_hash: str,
    indexed: tuple[int, str] | None,
) -> ev.DirectoryIndexed | None:
    """The folder index entry a listing makes, unless the index holds it already. A folder
    changed within MTIME_GUARD_NS of its listing is recorded as "always re-list" (0)."""
    if mtime_ns is None:
        return None
    recorded = mtime_ns if now_ns - mtime_ns > MTIME_GUARD_NS else 0
    if indexed == (recorded, current_hash):
        return None
    return ev.DirectoryIndexed(
        stream_id=task.library_id,
        path=task.path,
        mtime_ns=recorded,
        patterns_hash=current_hash,
        scan_id=task.scan_id,
    )


def children_by_parent(folders: Iterable[str], root: str) -> dict[str, set[str]]:
    """Each folder at or below `root` that leads to one of `folders`, with the direct
    subfolders it leads through (`/r/a/b` gives `/r: {/r/a}` and `/r/a: {/r/a/b}`)."""
    out: dict[str, set[str]] = {}
    for folder in folders:
        while folder != root and within(root, folder):
            parent = folder.rpartition("/")[0] or "/"
            children = out.setdefault(parent, set())
            if folder in children:
                break  # the rest of the way up is recorded already
            children.add(folder)
            folder = parent
    return out


def vanished_children(folder: str, children: set[str], present: set[str]) -> list[str]:
    """Subfolders that held online assets and are not there now (sorted)."""
    return sorted(c for c in children if c != folder and c not in present)


# --- the end of a scan --------------------------------------------------------------------


def final_totals(progress: ScanProgress, recorded: TaskDone) -> TaskDone:
    """The totals a finished scan records: the per-task records, unless some were lost (a
    KV outage), when the live counters, which never undercount, are kept."""
    if recorded.dirs < progress.dirs_done:
        return TaskDone(dirs=progress.dirs_done, files=max(recorded.files, progress.files_seen))
    return recorded
