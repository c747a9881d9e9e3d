"""A subtree task: reconcile a folder and the folders below it in one work item (decision 0026).

A *modified* or *force* scan stats every file, so the cost of a folder task (its round trips,
its queries) would dwarf the cost of its files. A subtree task walks its folders in batches:
per batch one lookup of the folders' kept fingerprints, one listing that stats (in parts: one
in the scanner, on the event loop for a batch of known, small folders, else in a thread, and
one in each free listing helper: decision 0035), and events only for differences. An
unchanged file costs one `stat` and a comparison. When the budget is spent, the folders not
yet listed are queued as further subtree tasks for any replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from services.scanner import listers
from services.scanner.batch import Walked
from services.scanner.crawl import NO_FILES_FINGERPRINT, UPLOAD_FOLDER_SKIPPED
from services.scanner.decide import Known, Planned, ScanContext, plan_dir, plan_offline
from services.scanner.finish import task_done
from services.scanner.publish import publish_planned
from services.scanner.rules import (
    children_by_parent,
    index_entry,
    tasks_below,
    vanished_children,
)
from shared import events as ev
from shared.work import ScanSubtree

if TYPE_CHECKING:
    from services.scanner.crawl import Fence
    from services.scanner.handlers import LibraryState, Scanner
    from services.scanner.repository import IndexEntry, ScanRepository

log = logging.getLogger(__name__)

BATCH_FOLDERS: Final = 128  # folders listed at a time, and per known-assets query
# A batch whose folders are all known, with at most this many files, is listed on the event
# loop: about 60 ms on these machines, where a thread would hand the GIL back and forth at
# every stat (a fifth of the walk's time). Bigger or unknown folders are listed in a thread.
INLINE_FILES: Final = 16_384
# Folders (or files) one task lists before queuing the rest for any replica. Large: a task's
# dispatch costs about 0.1 s, more than 4,000 unchanged files (decision 0026).
BUDGET_FOLDERS: Final = 4096
BUDGET_FILES: Final = 400_000
# A folder whose fingerprint matched (nothing to decide: a stat per file, no event) counts
# this much less against the budgets (decision 0031): a million unchanged files are one task.
UNCHANGED_SHARE: Final = 4
KEEPALIVE_EVERY: Final = 5.0  # seconds between in-progress acks


class _Run:
    """The state of one subtree task while it walks."""

    def __init__(self, s: Scanner, task: ScanSubtree, lib: LibraryState) -> None:
        self.s, self.task, self.lib = s, task, lib
        self.ctx = ScanContext(task.scan_id, task.library_id, lib.owner_id, task.mode)
        self.folders = 0
        self.files = 0
        self.spent = 0  # folders against the budget, in 1/UNCHANGED_SHARE parts
        self.spent_files = 0  # files likewise
        self.problems: list[ev.BaseEvent] = []
        self.index: dict[str, IndexEntry] = {}
        self.indexed_below: dict[str, set[str]] = {}
        self.held_below: dict[str, set[str]] = {}
        self.sizes: dict[str, int] | None = None  # online assets by folder, once read

    def problem(self, path: str, message: str) -> None:
        t = self.task
        self.problems.append(
            ev.ScanProblemFound(
                stream_id=t.library_id, scan_id=t.scan_id, path=path, message=message
            )
        )

    async def run(self, keepalive: Callable[[], Awaitable[None]] | None) -> list[str]:
        """Walk until the budget is spent; returns the folders left to further tasks."""
        t = self.task
        async with self.s.repo.held() as repo:
            # The folders that hold assets, and how many, on a connection of their own: at a
            # million assets the query takes about as long as listing the first batches.
            sizes = asyncio.ensure_future(self.s.repo.asset_dirs(t.library_id, t.path))
            try:
                return await self._walk(repo, sizes, keepalive)
            finally:
                if not sizes.done():
                    sizes.cancel()
                elif not sizes.cancelled():
                    sizes.exception()  # retrieved: raised already, or not needed

    async def _walk(
        self,
        repo: ScanRepository,
        sizes: asyncio.Future[dict[str, int]],
        keepalive: Callable[[], Awaitable[None]] | None,
    ) -> list[str]:
        t, fence = self.task, self.lib.fence
        assert fence is not None
        self.index = await repo.tree_index(t.library_id, t.path)
        self.indexed_below = children_by_parent(self.index, t.path)
        stack = [t.path]
        left: list[str] = []  # for further tasks, once the budget is spent
        spent = False
        beat = time.monotonic()
        while stack:
            if not spent and (
                self.spent >= BUDGET_FOLDERS * UNCHANGED_SHARE
                or self.spent_files >= BUDGET_FILES * UNCHANGED_SHARE
            ):
                # What is left goes to further tasks, but for the folders the index knows
                # without subfolders: a batched walk leaves hundreds of them behind (32 folders
                # a batch, each with its subfolders), and one costs less to list here than a
                # task costs to dispatch. Their new subfolders go to further tasks too.
                spent = True
                left = [f for f in stack if not self._leaf(f)]
                stack = [f for f in stack if self._leaf(f)]
                continue
            batch = [stack.pop() for _ in range(min(BATCH_FOLDERS, len(stack)))]
            walked, prints = await self._list(repo, batch, fence)
            # Only folders whose files differ from what is known are looked at file by file
            # (every folder in a *force* scan, which re-reads every file).
            differ = [
                w.folder
                for w in walked
                if w.listing is not None
                and (
                    t.mode is ev.ScanMode.FORCE
                    or w.fingerprint is None
                    or prints.get(w.folder, NO_FILES_FINGERPRINT) != w.fingerprint
                )
            ]
            # Positions before assets: see folder.py (decision 0030).
            positions = await repo.folder_positions(t.library_id, differ) if differ else {}
            known = await repo.known_in(t.library_id, differ) if differ else {}
            if self.sizes is None:  # before the first folder is reconciled
                self.sizes = await sizes
                self.held_below = children_by_parent(self.sizes, t.path)
            planned: list[Planned] = []
            folder_events: list[ev.BaseEvent] = []
            for w in walked:
                if w.root_lost:
                    self.problem(
                        w.folder,
                        f"import path {t.import_path} became unavailable during the scan; "
                        "nothing below it was changed. Is the drive mounted?",
                    )
                    stack.clear()
                    left.clear()
                    break
                self.folders += 1
                if w.listing is None:
                    self.spent += UNCHANGED_SHARE
                    self.problem(w.folder, w.problem or "cannot read folder")
                    continue
                differs = known.get(w.folder)
                share = 1 if differs is None else UNCHANGED_SHARE
                self.spent += share
                self.spent_files += share * len(w.listing)
                planned += await self._reconcile(w, differs, folder_events)
                (left if spent else stack).extend(sorted(w.listing.subdirs, reverse=True))
            await publish_planned(self.s.bus, planned, self.s.settings.scan.batch_files, positions)
            if folder_events:
                await self.s.bus.publish_many(folder_events)
            if keepalive is not None and time.monotonic() - beat > KEEPALIVE_EVERY:
                await keepalive()
                beat = time.monotonic()
        return left

    async def _list(
        self, repo: ScanRepository, batch: list[str], fence: Fence
    ) -> tuple[list[Walked], dict[str, str | None]]:
        """A batch listed (in parts, with the listing helpers) while its folders' kept
        fingerprints are looked up."""
        t = self.task
        inline = self._small(batch)
        prints = asyncio.ensure_future(repo.fingerprints(t.library_id, batch))
        try:
            await asyncio.sleep(0)  # the query goes out before the loop is held
            walked = await listers.walk(batch, fence, t.import_path, inline=inline)
        except BaseException:
            prints.cancel()
            raise
        return walked, await prints

    def _small(self, batch: list[str]) -> bool:
        """Whether every folder of the batch is known (the folder index or the assets), with
        at most INLINE_FILES files between them."""
        if self.sizes is None:
            return False
        total = 0
        for folder in batch:
            n = self.sizes.get(folder)
            if n is None:
                if folder not in self.index:
                    return False  # never listed: it could hold any number of files
                n = 0
            total += n
        return total <= INLINE_FILES

    def _leaf(self, folder: str) -> bool:
        """Whether the folder index knows the folder, and no folder below it."""
        return folder in self.index and folder not in self.indexed_below

    async def _reconcile(
        self, w: Walked, known: dict[str, Known] | None, folder_events: list[ev.BaseEvent]
    ) -> list[Planned]:
        """The events of one listed folder: its files, its vanished subfolders, its index."""
        listing, t = w.listing, self.task
        assert listing is not None
        self.files += len(listing)
        for path, message in listing.problems:
            self.problem(path, message)
        planned: list[Planned] = []
        if known is not None:  # None: the folder's fingerprint matched; nothing to decide
            present = [f.path for f in listing.files]
            seen = w.seen if w.seen is not None else listing.seen()
            planned = plan_dir(self.ctx, known, present, seen, listing.excluded)
        subdirs = set(listing.subdirs)
        for child in vanished_children(w.folder, self.held_below.get(w.folder, set()), subdirs):
            assets = await self.s.repo.online_in_tree(t.library_id, child)
            planned += plan_offline(self.ctx, assets, ev.OfflineReason.DELETED)
        folder_events += [
            ev.DirectoryGone(stream_id=t.library_id, path=g, scan_id=t.scan_id)
            for g in sorted(self.indexed_below.get(w.folder, set()) - subdirs)
            if g in self.index
        ]
        entry = index_entry(
            ScanSubtree(
                scan_id=t.scan_id,
                library_id=t.library_id,
                path=w.folder,
                import_path=t.import_path,
                mode=t.mode,
            ),
            listing.mtime_ns,
            time.time_ns(),
            self.lib.patterns_hash,
            self.index.get(w.folder),
        )
        if entry is not None:
            folder_events.append(entry)
        return planned


async def handle_subtree_task(
    s: Scanner, task: ScanSubtree, keepalive: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Reconcile a folder and what lies below it, up to the budget; queue what is left."""
    lib = await s.library(task.library_id)
    if lib is None:
        return
    run = _Run(s, task, lib)
    fence = lib.fence
    left: list[str] = []
    if fence is None or not fence.contains(task.path) or fence.excludes(task.path):
        run.problem(
            task.path,
            UPLOAD_FOLDER_SKIPPED
            if fence is not None and fence.excludes(task.path)
            else "outside the external path; skipped",
        )
    else:
        left = await run.run(keepalive)
    if run.problems:
        await s.bus.publish_many(run.problems)
        for p in run.problems:
            assert isinstance(p, ev.ScanProblemFound)
            log.warning(
                "scan %s library %s: %s: %s", task.scan_id, task.library_id, p.path, p.message
            )
    subtasks = tasks_below(task, ScanSubtree, left[::-1])
    await task_done(
        s, task, subtasks, folders=run.folders, files=run.files, problems=len(run.problems)
    )
