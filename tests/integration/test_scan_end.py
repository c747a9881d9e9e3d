"""When a scan is done: its start has queued every root, and each task left on its WORK
subject is one whose work is not yet counted (an acknowledgement lost during a leader election
leaves a done task on the stream for good)."""

from __future__ import annotations

import asyncio
import uuid

from shared.scanprogress import (
    ScanProgress,
    count_once,
    outstanding,
    read_progress,
    roots_queued,
    update_progress,
)
from shared.work import WORK_ENCODER, ScanTree, dir_task_msg_id, scan_work_subject
from tests.system import System


async def test_a_done_task_left_on_the_stream_is_not_outstanding(system: System) -> None:
    js, nats = system.ctx.nc.jetstream(), system.settings.nats
    scan, library = uuid.uuid4(), uuid.uuid4()
    tasks = [
        ScanTree(scan_id=scan, library_id=library, path=f"/photos/{n}", import_path="/photos")
        for n in range(3)
    ]
    for task in tasks:
        await js.publish(
            scan_work_subject(nats, scan),
            WORK_ENCODER.encode(task),
            stream=nats.name("WORK"),
            headers={"Nats-Msg-Id": dir_task_msg_id(task)},
        )
    assert await outstanding(js, nats, scan) == 3
    # Two are done (counted) but never acknowledged: only the third is outstanding.
    for task in tasks[:2]:
        assert await count_once(js, nats, scan, dir_task_msg_id(task), dirs_done=1)
    info = await js.stream_info(nats.name("WORK"), subjects_filter=scan_work_subject(nats, scan))
    assert info.state.subjects == {scan_work_subject(nats, scan): 3}
    assert await outstanding(js, nats, scan) == 1
    await count_once(js, nats, scan, dir_task_msg_id(tasks[2]), dirs_done=1)
    assert await outstanding(js, nats, scan) == 0
    assert await outstanding(js, nats, uuid.uuid4()) == 0


async def test_a_scan_is_not_done_while_its_start_is_queueing(system: System) -> None:
    js, nats = system.ctx.nc.jetstream(), system.settings.nats
    scan = uuid.uuid4()
    await update_progress(js, nats, scan, pending=2, init=ScanProgress(roots_queued=False))
    assert not await roots_queued(js, nats, scan)
    await update_progress(js, nats, scan, dirs_done=1)
    assert not await roots_queued(js, nats, scan)
    await update_progress(js, nats, scan, roots_queued=True)
    assert await roots_queued(js, nats, scan)
    # A scan started by a scanner from before the flag: its record reads as queued.
    old = uuid.uuid4()
    kv = await js.key_value(nats.name("scans"))
    await kv.put(str(old), b'{"library_id": "x", "pending": 1}')
    assert await roots_queued(js, nats, old)


async def test_the_start_marks_its_roots_unqueued_after_counting_pruned_folders(
    system: System,
) -> None:
    """A *new* scan of an indexed library counts its unchanged folders first, which makes the
    progress record (queued, by default); the start must still mark its roots unqueued."""
    js, nats = system.ctx.nc.jetstream(), system.settings.nats
    scan = uuid.uuid4()
    await count_once(js, nats, scan, "start", dirs_done=40, files_seen=2000)
    assert await roots_queued(js, nats, scan)  # the record as the count made it
    await update_progress(
        js, nats, scan, pending=20, init=ScanProgress(library_id="x"), roots_queued=False
    )
    assert not await roots_queued(js, nats, scan)


async def test_tasks_counted_at_once_in_one_process_all_count_in_fewer_updates(
    system: System,
) -> None:
    js, nats = system.ctx.nc.jetstream(), system.settings.nats
    scan = uuid.uuid4()
    await update_progress(js, nats, scan, pending=200, init=ScanProgress(library_id="l"))
    kv = await js.key_value(nats.name("scans"))
    before = (await kv.get(str(scan))).revision
    # 200 folder tasks finishing at once in one scanner, each from a process of its own
    # would race for one key: added together, each returns once its counts are stored.
    counted = await asyncio.gather(
        *(
            count_once(js, nats, scan, f"task-{i}", pending=-1, dirs_done=1, files_seen=i)
            for i in range(200)
        )
    )
    assert all(counted)
    progress = await read_progress(js, nats, scan)
    assert (progress.pending, progress.dirs_done, progress.files_seen) == (0, 200, sum(range(200)))
    # Far fewer updates than tasks (the revision moves once per stored update).
    updates = (await kv.get(str(scan))).revision - before
    assert 1 <= updates < 100, updates
