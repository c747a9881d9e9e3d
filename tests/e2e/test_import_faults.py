"""The pipelined publishing of a first import under faults (issue 16, decision 0028): a scanner
killed mid-folder, nats-server killed and started again mid-folder, nats-server frozen for
longer than an ack's timeout. Each ends exact: one asset per file, each file born once on the
stream (in one `FilesDiscovered`, decision 0030), every event id once, the scan's totals right,
no traceback. The scanner records PER_EVENT files per event here, so the big folder's births
take long enough for the fault to land among them.

The library is one big folder (its publishing takes seconds, so the fault lands inside it)
and a few small ones, of tiny JPEG-headed files: no metadata service runs, this is about the
scanner's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.infra import free_port
from tests.e2e.test_faults import Lab, Run, event_counts, fresh_run, open_lab, quiet
from tests.system import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIG = int(os.environ.get("SHOEBOX_IMPORT_FAULT_FILES", "30000"))  # files in the big folder
SMALL = 10  # small folders of 50 files each
FILES = BIG + SMALL * 50
PER_EVENT = 20  # SHOEBOX_SCAN_BATCH_FILES of the scanner under test
FREEZE = 7.0  # seconds nats-server is stopped (SIGSTOP): longer than an ack's 5 s timeout


def _import_library(media: Path) -> None:
    payload = b"\xff\xd8\xff\xe0" + b"\0" * 60
    for i in range(SMALL):
        folder = media / f"small-{i:02d}"
        folder.mkdir(parents=True)
        for j in range(50):
            (folder / f"s{j:03d}.jpg").write_bytes(payload)
    (media / "big").mkdir()
    for i in range(BIG):
        (media / "big" / f"IMG_{i:06d}.jpg").write_bytes(payload)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with open_lab(_import_library) as the_lab:
        yield the_lab


@contextlib.asynccontextmanager
async def import_run(lab: Lab, tmp_path: Path) -> AsyncIterator[tuple[Run, str]]:
    """A fresh system over the lab's library, the projector and one scanner as processes (no
    metadata service); yields the run and the port of the scanner's /metrics."""
    metrics = str(free_port())
    async with fresh_run(
        lab,
        tmp_path,
        0,
        SHOEBOX_METRICS_PORT=metrics,
        SHOEBOX_SCAN_BATCH_FILES=str(PER_EVENT),
    ) as run:
        yield run, metrics


async def stream_messages(run: Run) -> int:
    """Messages on the EVENTS stream (the scan adds one FilesDiscovered per PER_EVENT files of a
    folder, and a few)."""
    settings = run.system.settings.nats
    info = await run.system.ctx.nc.jetstream().stream_info(settings.name("EVENTS"))
    return int(info.state.messages)


async def scan_mid_folder(run: Run) -> None:
    """Start the scan and wait until the big folder is being published (more events than the
    small folders make, far from all of it)."""
    before = await stream_messages(run)
    await run.scan()
    seen = 0

    async def publishing() -> bool:
        nonlocal seen
        seen = await stream_messages(run) - before
        return seen >= SMALL * 50 // PER_EVENT + 2000 // PER_EVENT

    await eventually(publishing, 120, "the big folder's events under way")
    far = (FILES - 5000) // PER_EVENT
    assert seen < far, f"the fault came too late to land mid-folder: {seen} events"


async def finished_exact(run: Run) -> None:
    """The scan ends, and every file is one asset, discovered once."""
    await run.reach(
        "the scan to finish with every file an asset",
        lambda p: p.state == "finished" and p.assets == FILES,
        240,
    )
    p = await run.progress()
    assert p is not None
    assert (p.assets, p.distinct_paths, p.files_seen, p.new) == (FILES,) * 4, p
    counts = await event_counts(run.system)
    ids = counts.pop("_ids")
    assert ids["events"] == ids["distinct"], f"{ids['events'] - ids['distinct']} duplicates"
    born = counts["births"]
    twice = {a: n for a, n in born.items() if n != 1}
    assert len(born) == FILES and not twice, f"{len(twice)} assets discovered twice"


def scanner_metric(port: str, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def test_a_scanner_killed_mid_folder_leaves_no_duplicate_and_loses_no_file(
    lab: Lab, tmp_path: Path
) -> None:
    async with import_run(lab, tmp_path) as (run, _):
        await scan_mid_folder(run)
        run.procs["scanner"].send_signal(signal.SIGKILL)
        run.procs["scanner"].wait(10)
        # Another replica takes the folder when its ack_wait (5 s) runs out.
        run.spawn("scanner-b", "services.scanner")
        await finished_exact(run)
        await run.stop()
        logs = run.log("scanner-b") + run.log("projector")
    assert "Traceback" not in logs, logs[-5000:]


async def test_nats_restarted_mid_folder_leaves_no_duplicate_and_loses_no_file(
    lab: Lab, tmp_path: Path
) -> None:
    async with import_run(lab, tmp_path) as (run, _):
        await scan_mid_folder(run)
        lab.kill_nats()
        lab.start_nats()
        await finished_exact(run)
        await run.stop()
        quiet(run, "NATS")


async def test_acks_slower_than_their_timeout_are_retried_and_counted_not_raised(
    lab: Lab, tmp_path: Path
) -> None:
    async with import_run(lab, tmp_path) as (run, port):
        await scan_mid_folder(run)
        lab.nats.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(FREEZE)  # the fault's own length, not a wait for an outcome
        finally:
            lab.nats.send_signal(signal.SIGCONT)
        await finished_exact(run)
        timeouts = scanner_metric(port, "shoebox_scanner_ack_timeouts_total")
        retried = scanner_metric(port, "shoebox_scanner_publish_retries_total")
        await run.stop()
        quiet(run, "NATS")
    # The freeze outlasted an ack's timeout while the big folder was being published.
    assert timeouts >= 1 and retried >= 1, (timeouts, retried)
