"""Work items: derived, not facts. Shared by replicas through durable pull consumers on WORK."""

from __future__ import annotations

import uuid

import msgspec

from shared.events import ScanMode
from shared.settings import NatsSettings


class DirTask(msgspec.Struct, frozen=True, kw_only=True):
    """List one directory of a scan and reconcile its files with the library's assets."""

    scan_id: uuid.UUID
    library_id: uuid.UUID
    path: str
    import_path: str
    mode: ScanMode = ScanMode.NEW
    # The watcher asks for single folders (recursive=False, watch=True): no subfolders are
    # queued and no scan run is counted or finished for them.
    recursive: bool = True
    watch: bool = False
    # Set by a pruned *new*-mode scan: subfolders already in the folder index are checked by
    # the planner itself, so only subfolders the index does not know are queued.
    skip_indexed: bool = False
    # Watch tasks only: files modified less than this long ago are still being written (the
    # folder may have settled because of another entry); they are left for the watcher's next
    # task, which comes once they settle.
    settle_ms: int = 0


WORK_ENCODER = msgspec.json.Encoder()
DIR_TASK_DECODER = msgspec.json.Decoder(DirTask)


def scan_work_subject(settings: NatsSettings, scan_id: uuid.UUID | str) -> str:
    """All directory tasks of one scan share a subject, so its backlog can be counted."""
    return settings.subject("work", "scan", str(scan_id))


def dir_task_msg_id(task: DirTask) -> str:
    """De-duplicates a directory task re-published after a crash."""
    return str(uuid.uuid5(task.scan_id, task.path))


def watch_task(
    library_id: uuid.UUID, directory: str, import_path: str, settle_ms: int = 0
) -> DirTask:
    """A one-folder *modified* reconciliation requested by the watcher."""
    return DirTask(
        scan_id=uuid.uuid4(),
        library_id=library_id,
        path=directory,
        import_path=import_path,
        mode=ScanMode.MODIFIED,
        recursive=False,
        watch=True,
        settle_ms=settle_ms,
    )
