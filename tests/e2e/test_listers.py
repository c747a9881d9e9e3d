"""A scanner's listing helpers (decision 0035): a *modified* scan lists its folders in parts, one
in the scanner and one in a helper forked at its start, and finds every change either way; a
helper killed is listed around; the helper goes with its scanner. The services run as
processes (the helpers are forked by a scanner's own main)."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import asyncpg
import psutil
import pytest

from shared.infra import free_port
from tests.e2e.test_faults import Lab, Run, fresh_run, open_lab
from tests.e2e.test_import_faults import scanner_metric
from tests.factories import backdate
from tests.system import eventually

pytestmark = [pytest.mark.e2e]

FOLDERS = 48  # a batch splits in two from 16 folders (listers.MIN_PART)
PER_FOLDER = 10
PAST = 1_600_000_000


def _library(media: Path) -> None:
    payload = b"\xff\xd8\xff\xe0" + b"\0" * 60
    for i in range(FOLDERS):
        folder = media / f"roll-{i:02d}"
        folder.mkdir(parents=True)
        for j in range(PER_FOLDER):
            (folder / f"img-{j:02d}.jpg").write_bytes(payload)
    backdate(media, PAST)


@pytest.fixture
def lab() -> Lab:  # type: ignore[misc]
    with open_lab(_library) as the_lab:
        yield the_lab


async def _scan_totals(run: Run) -> tuple[str, int, int, int]:
    conn = await asyncpg.connect(run.system.settings.db.url)
    try:
        row = await conn.fetchrow(
            "SELECT state, new, changed, missing FROM scan_runs WHERE library_id = $1 "
            "ORDER BY requested_at DESC LIMIT 1",
            uuid.UUID(run.library),
        )
    finally:
        await conn.close()
    assert row is not None
    return row["state"], row["new"], row["changed"], row["missing"]


async def _modified_scan(run: Run) -> tuple[int, int, int]:
    before = await _scan_totals(run)
    r = await run.system.client.post(
        f"/api/libraries/{run.library}/scan",
        headers=run.admin,
        json={"refreshModifiedFiles": True},
    )
    assert r.status_code == 204, r.text
    last: tuple[str, int, int, int] = before

    async def finished() -> bool:
        nonlocal last
        last = await _scan_totals(run)
        return last != before and last[0] == "finished"

    await eventually(finished, 60, "the modified scan to finish")
    return last[1:]


def _change(media: Path, round_: int) -> None:
    """In six folders spread over the library, one file's mtime moves; one file is added to a
    folder and one removed from another (their folders' mtimes stay in the past, as a copy
    that keeps times would leave them: only the fingerprints can tell)."""
    for i in range(0, FOLDERS, FOLDERS // 6):
        os.utime(media / f"roll-{i:02d}" / "img-03.jpg", (PAST + round_, PAST + round_))
    added = media / "roll-05" / f"new-{round_}.jpg"
    added.write_bytes(b"\xff\xd8\xff\xe0" + b"\1" * 60)
    os.utime(added, (PAST, PAST))
    (media / "roll-40" / f"img-0{round_}.jpg").unlink()
    for folder in ("roll-05", "roll-40"):
        os.utime(media / folder, (PAST, PAST))


def _helpers(run: Run) -> list[psutil.Process]:
    return run.workers("scanner")


async def _exited(p: psutil.Process, why: str) -> None:
    async def gone() -> bool:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE

    await eventually(gone, 10, why)


async def test_a_modified_scan_lists_with_a_helper_and_finds_every_change(
    lab: Lab, tmp_path: Path
) -> None:
    port = str(free_port())
    async with fresh_run(
        lab, tmp_path, 0, SHOEBOX_SCAN_LISTERS="1", SHOEBOX_METRICS_PORT=port
    ) as run:
        await run.scan()
        await run.reach("the first scan", lambda p: p.state == "finished", 60)
        assert len(_helpers(run)) == 1, "the scanner forks one listing helper"
        assert await _modified_scan(run) == (0, 0, 0)  # unchanged: every fingerprint matched
        listed = scanner_metric(port, "shoebox_scanner_helper_folders_total")
        assert listed >= FOLDERS // 3, f"the helper listed {listed} folders"

        _change(lab.media, 1)
        assert await _modified_scan(run) == (1, 6, 1)
        assert await _modified_scan(run) == (0, 0, 0)

        # A helper killed: its share is listed by the scanner, which carries on.
        helper = _helpers(run)[0]
        helper.send_signal(signal.SIGKILL)
        await _exited(helper, "the helper to die")
        _change(lab.media, 2)
        assert await _modified_scan(run) == (1, 6, 1)
        assert run.procs["scanner"].poll() is None
        assert "listing helper" in run.log("scanner")


async def test_a_helper_goes_with_its_scanner(lab: Lab, tmp_path: Path) -> None:
    async with fresh_run(lab, tmp_path, 0, SHOEBOX_SCAN_LISTERS="1") as run:

        async def forked() -> bool:
            return len(_helpers(run)) == 1

        await eventually(forked, 30, "the scanner to fork its helper")
        helper = _helpers(run)[0]
        run.procs["scanner"].send_signal(signal.SIGKILL)  # no goodbye: the socket closes
        run.procs["scanner"].wait(10)
        await _exited(helper, "the helper to exit with its scanner")
