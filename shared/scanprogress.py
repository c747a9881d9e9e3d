"""A scan's live progress in NATS KV, shared by every scanner replica working on it.

`pending` counts directory work items queued and not yet done; when a replica finishes the last
one it sees `pending` reach 0 and finishes the scan. Updates are compare-and-set on the key's
revision, so concurrent replicas never lose a count.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import TYPE_CHECKING

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError

from shared.work import scan_work_subject

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

    from shared.settings import NatsSettings


log = logging.getLogger(__name__)


class ScanProgress(msgspec.Struct, kw_only=True):
    """Counters of one scan run."""

    library_id: str = ""
    mode: str = "new"
    pending: int = 0
    dirs_done: int = 0
    files_seen: int = 0
    finished: bool = False
    unavailable: list[str] = []
    # False from a scan's start until every root folder is queued: until then an empty WORK
    # subject means "not queued yet", not "done". Records written before it existed read True.
    roots_queued: bool = True


_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(ScanProgress)

_BUCKETS: weakref.WeakKeyDictionary[JetStreamContext, dict[str, KeyValue]] = (
    weakref.WeakKeyDictionary()
)


async def _bucket(js: JetStreamContext, name: str) -> KeyValue:
    """A KV bucket's handle, looked up once per JetStream context (nats-py asks the server
    for the bucket's stream on every `key_value` call: a round trip per folder task)."""
    handles = _BUCKETS.setdefault(js, {})
    kv = handles.get(name)
    if kv is None:
        kv = handles[name] = await js.key_value(name)
    return kv


async def read_progress(
    js: JetStreamContext, settings: NatsSettings, scan_id: uuid.UUID
) -> ScanProgress:
    kv = await _bucket(js, settings.name("scans"))
    try:
        entry = await kv.get(str(scan_id))
    except (KeyNotFoundError, NotFoundError):
        return ScanProgress()
    return _DEC.decode(entry.value or b"{}")


async def update_progress(
    js: JetStreamContext,
    settings: NatsSettings,
    scan_id: uuid.UUID,
    *,
    pending: int = 0,
    dirs_done: int = 0,
    files_seen: int = 0,
    unavailable: list[str] | None = None,
    init: ScanProgress | None = None,
    roots_queued: bool | None = None,
) -> ScanProgress:
    """Add to the counters atomically; returns the state after this update."""
    kv = await _bucket(js, settings.name("scans"))
    key = str(scan_id)
    while True:
        try:
            entry = await kv.get(key)
            current, revision = _DEC.decode(entry.value or b"{}"), entry.revision
        except (KeyNotFoundError, NotFoundError):
            current, revision = (init or ScanProgress()), 0
        current.pending += pending
        current.dirs_done += dirs_done
        current.files_seen += files_seen
        if unavailable:
            current.unavailable = [*current.unavailable, *unavailable]
        if roots_queued is not None:
            current.roots_queued = roots_queued
        try:
            if revision:
                await kv.update(key, _ENC.encode(current), last=revision)
            else:
                await kv.create(key, _ENC.encode(current))
            return current
        except (KeyWrongLastSequenceError, APIError) as e:
            if not _is_cas_conflict(e):
                raise


async def roots_queued(js: JetStreamContext, settings: NatsSettings, scan_id: uuid.UUID) -> bool:
    """Whether the scan's start has queued all its root folders, read from the bucket's stream
    leader (a direct get may be answered by a replica that is behind)."""
    bucket = settings.name("scans")
    try:
        msg = await js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{scan_id}")
    except NotFoundError:
        return False
    return _DEC.decode(msg.data or b"{}").roots_queued


def _is_cas_conflict(e: Exception) -> bool:
    if isinstance(e, KeyWrongLastSequenceError):
        return True
    code = getattr(e, "err_code", None)
    return code in (10071, 10164)  # wrong last sequence / key exists


class TaskDone(msgspec.Struct, kw_only=True):
    """What one folder task of a scan added (or the scan's start, for folders it pruned)."""

    dirs: int = 0
    files: int = 0


_TASK_ENC = msgspec.json.Encoder()
_TASK_DEC = msgspec.json.Decoder(TaskDone)


def _task_key(scan_id: uuid.UUID, task: str) -> str:
    return f"{scan_id}.{task}"


async def count_once(
    js: JetStreamContext,
    settings: NatsSettings,
    scan_id: uuid.UUID,
    task: str,
    *,
    pending: int = 0,
    dirs_done: int = 0,
    files_seen: int = 0,
) -> bool:
    """Add a folder task's counts once, whatever the redeliveries: the task's own key in the
    `scan-tasks` bucket is created first, and a task that finds it there (redone after a lost
    ack) adds nothing. Returns whether this call counted.

    A crash between the two writes leaves the live counters short of this task; the total a
    scan records when it ends is summed from the task keys (`exact_totals`), so it is exact.
    """
    kv = await _bucket(js, settings.name("scan-tasks"))
    try:
        await kv.create(
            _task_key(scan_id, task), _TASK_ENC.encode(TaskDone(dirs=dirs_done, files=files_seen))
        )
    except (KeyWrongLastSequenceError, APIError) as e:
        if _is_cas_conflict(e):
            return False
        raise
    await add_progress(js, settings, scan_id, (pending, dirs_done, files_seen))
    return True


class _Adds:
    """Counter additions waiting for one scan's next progress update in this process."""

    def __init__(self) -> None:
        self.waiting: list[tuple[tuple[int, int, int], asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None


_ADDS: dict[tuple[int, str, uuid.UUID], _Adds] = {}


async def add_progress(
    js: JetStreamContext, settings: NatsSettings, scan_id: uuid.UUID, add: tuple[int, int, int]
) -> None:
    """Add (pending, dirs_done, files_seen) to the scan's progress; returns once an update
    holding it is stored. The folder tasks of one process are added together, one update in
    flight per scan: 16 tasks racing for one key's compare-and-set would each lose and ask
    again (a round trip each) most of the time."""
    key = (id(js), settings.name("scans"), scan_id)
    adds = _ADDS.setdefault(key, _Adds())
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    adds.waiting.append((add, done))
    if adds.flusher is None or adds.flusher.done():
        adds.flusher = asyncio.create_task(_flush(js, settings, scan_id, key, adds))
    await done


async def _flush(
    js: JetStreamContext,
    settings: NatsSettings,
    scan_id: uuid.UUID,
    key: tuple[int, str, uuid.UUID],
    adds: _Adds,
) -> None:
    batch: list[tuple[tuple[int, int, int], asyncio.Future[None]]] = []
    try:
        while adds.waiting:
            batch, adds.waiting = adds.waiting, []
            try:
                await update_progress(
                    js,
                    settings,
                    scan_id,
                    pending=sum(a[0] for a, _ in batch),
                    dirs_done=sum(a[1] for a, _ in batch),
                    files_seen=sum(a[2] for a, _ in batch),
                )
            except Exception as e:
                _resolve(batch, e)
            else:
                _resolve(batch, None)
            batch = []
    except BaseException:
        # Cancelled mid-update (nats-py cancels a request when its connection is lost): every
        # waiter is told, as a NATS outage, so its task is tried again; none is left waiting.
        lost = NatsTimeoutError("the scan's progress update was interrupted")
        _resolve(batch + adds.waiting, lost)
        adds.waiting = []
        raise
    finally:
        if not adds.waiting and _ADDS.get(key) is adds:
            del _ADDS[key]


def _resolve(
    batch: list[tuple[tuple[int, int, int], asyncio.Future[None]]], error: BaseException | None
) -> None:
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


async def exact_totals(
    js: JetStreamContext, settings: NatsSettings, scan_id: uuid.UUID, *, at_least_dirs: int = 0
) -> TaskDone:
    """Folders and files of a scan, summed from what each of its tasks recorded.

    Every task counted in the live progress has its key, so the sum holds at least
    `at_least_dirs` folders (the progress's `dirs_done`). A watch answered while the bucket's
    stream elects a new leader can end before its values: it is asked again (for up to 10 s),
    and the larger of the two counts is kept if it never catches up."""
    total = await _sum_tasks(js, settings, scan_id)
    deadline = asyncio.get_running_loop().time() + 10.0
    while total.dirs < at_least_dirs and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)  # back off while the bucket's leader settles
        total = await _sum_tasks(js, settings, scan_id)
    return total


# Below this many messages left on a scan's WORK subject, each is looked at (see `outstanding`).
LOOK_AT_MOST = 64


async def outstanding(js: JetStreamContext, settings: NatsSettings, scan_id: uuid.UUID) -> int:
    """Folder tasks of a scan not yet done: queued, in flight, or done but not yet acknowledged.

    A task that is done has its key in `scan-tasks` (count_once, after its subfolders are
    queued) before it is acknowledged. The WORK subject's message count alone can stay above
    zero for good: an acknowledgement whose answer was lost while a stream leader was elected,
    or an acked message a new leader still holds. When few messages are left, each is looked
    at, and one whose task is counted is done."""
    stream, subject = settings.name("WORK"), scan_work_subject(settings, scan_id)
    info = await js.stream_info(stream, subjects_filter=subject)
    left = int((info.state.subjects or {}).get(subject, 0))
    if left == 0 or left > LOOK_AT_MOST:
        return left
    tasks = f"KV_{settings.name('scan-tasks')}"
    prefix = f"$KV.{settings.name('scan-tasks')}."
    not_done, seq, looked = 0, 1, 0
    for _ in range(left):
        try:
            msg = await js.get_msg(stream, seq, subject=subject, next=True)
        except NotFoundError:
            break  # acknowledged meanwhile
        seq, looked = (msg.seq or seq) + 1, looked + 1
        task = (msg.headers or {}).get("Nats-Msg-Id")
        try:
            if task is None:
                raise NotFoundError
            await js.get_last_msg(tasks, prefix + _task_key(scan_id, task))
        except NotFoundError:
            not_done += 1
    if looked > not_done:
        log.debug("scan %s: %d done tasks still on the WORK stream", scan_id, looked - not_done)
    return not_done


async def _sum_tasks(js: JetStreamContext, settings: NatsSettings, scan_id: uuid.UUID) -> TaskDone:
    kv = await _bucket(js, settings.name("scan-tasks"))
    total = TaskDone()
    watcher = await kv.watch(f"{scan_id}.>")
    try:
        async for entry in watcher:
            if entry is None:  # every current value has been delivered
                break
            if entry.value:
                done = _TASK_DEC.decode(entry.value)
                total.dirs += done.dirs
                total.files += done.files
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return total
