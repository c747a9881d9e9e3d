"""Work items: derived, not facts. Shared by replicas through durable pull consumers on WORK."""

from __future__ import annotations

import enum
import uuid

import msgspec

from shared.events import ScanMode
from shared.settings import NatsSettings


class TaskKind(enum.StrEnum):
    """What a folder task does besides reconciling its folder."""

    SCAN_TREE = "scan-tree"  # queue every subfolder too; counted in its scan
    SCAN_SUBTREE = "scan-subtree"  # walk the folders below in the same task, up to a budget
    SCAN_PRUNED = "scan-pruned"  # a pruned *new* scan: queue only subfolders the index lacks
    SCAN_FOLDER = "scan-folder"  # this folder only (a scan of one file); counted in its scan
    WATCH_FOLDER = "watch-folder"  # this folder only, for the watcher; no scan run to count


class _Task(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    scan_id: uuid.UUID
    library_id: uuid.UUID
    path: str
    import_path: str
    mode: ScanMode = ScanMode.NEW


class ScanTree(_Task, frozen=True, kw_only=True, tag=TaskKind.SCAN_TREE.value):
    """List one folder of a scan, reconcile its files, and queue its subfolders."""


class ScanSubtree(_Task, frozen=True, kw_only=True, tag=TaskKind.SCAN_SUBTREE.value):
    """Reconcile a folder and the folders below it in one task (decision 0026): a *modified*
    or *force* scan, where every file is stat'ed anyway. What is left when the task's budget
    is spent is queued as further subtree tasks, so replicas still share a big library."""


class ScanPruned(_Task, frozen=True, kw_only=True, tag=TaskKind.SCAN_PRUNED.value):
    """A folder whose mtime moved, in a *new* scan of an indexed library: subfolders already in
    the folder index were checked at the scan's start, so only the others are queued."""


class ScanFolder(_Task, frozen=True, kw_only=True, tag=TaskKind.SCAN_FOLDER.value):
    """One folder of a scan (the folder of a file a scan was asked for); nothing below it."""


class WatchFolder(_Task, frozen=True, kw_only=True, tag=TaskKind.WATCH_FOLDER.value):
    """A one-folder *modified* reconciliation requested by the watcher."""

    # Files modified less than this long ago are still being written (the folder may have
    # settled because of another entry); they are left for the watcher's next task.
    settle_ms: int = 0


DirTask = ScanTree | ScanSubtree | ScanPruned | ScanFolder | WatchFolder


def kind_of(task: DirTask) -> TaskKind:
    """The task's kind (its tag on the wire)."""
    return TaskKind(str(type(task).__struct_config__.tag))


class _LegacyDirTask(msgspec.Struct, frozen=True, kw_only=True):
    """A folder task as code before decision 0026 wrote it: four steering fields."""

    scan_id: uuid.UUID
    library_id: uuid.UUID
    path: str
    import_path: str
    mode: ScanMode = ScanMode.NEW
    recursive: bool = True
    watch: bool = False
    skip_indexed: bool = False
    settle_ms: int = 0

    def upgrade(self) -> DirTask:
        """The same task, with the kind its four fields meant."""
        kind = (
            TaskKind.WATCH_FOLDER
            if self.watch
            else TaskKind.SCAN_FOLDER
            if not self.recursive
            else TaskKind.SCAN_PRUNED
            if self.skip_indexed
            else TaskKind.SCAN_TREE
        )
        # Fields a kind does not have (settle_ms outside watch tasks) are dropped.
        raw = msgspec.structs.asdict(self) | {"kind": kind.value}
        task: DirTask = msgspec.convert(raw, DirTask)
        return task


WORK_ENCODER = msgspec.json.Encoder()
_TASK_DECODER = msgspec.json.Decoder(DirTask)
_LEGACY_DECODER = msgspec.json.Decoder(_LegacyDirTask)


def decode_task(raw: bytes) -> DirTask:
    """A folder task from the WORK stream; one queued by older code (no `kind`) is upgraded.

    Raises msgspec.ValidationError (or DecodeError) for anything that is neither.
    """
    try:
        task: DirTask = _TASK_DECODER.decode(raw)
    except msgspec.ValidationError:
        legacy = _LEGACY_DECODER.decode(raw)
        if "kind" in msgspec.json.decode(raw):
            raise  # a kind we do not know is not an old task
        return legacy.upgrade()
    return task


def scan_work_subject(settings: NatsSettings, scan_id: uuid.UUID | str) -> str:
    """All directory tasks of one scan share a subject, so its backlog can be counted."""
    return settings.subject("work", "scan", str(scan_id))


def dir_task_msg_id(task: DirTask) -> str:
    """De-duplicates a directory task re-published after a crash."""
    return str(uuid.uuid5(task.scan_id, task.path))


def watch_task(
    library_id: uuid.UUID, directory: str, import_path: str, settle_ms: int = 0
) -> WatchFolder:
    """A one-folder *modified* reconciliation requested by the watcher."""
    return WatchFolder(
        scan_id=uuid.uuid4(),
        library_id=library_id,
        path=directory,
        import_path=import_path,
        mode=ScanMode.MODIFIED,
        settle_ms=settle_ms,
    )
