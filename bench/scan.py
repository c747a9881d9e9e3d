"""Scan benchmark: a 100,000-file library through the whole system vs a bare os.scandir walk.

Run: `.venv/bin/python bench/scan.py [--files 100000] [--per-dir 100]`. Prints, in one run: the
bare walk (the floor), the first scan, an unchanged *new*-mode rescan and its ratio to the floor,
an unchanged *modified*-mode rescan and its ratio to a walk that stats every file, files/s with
1 and with 2 scanner processes, and the scanner's peak RSS. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import children_of, infra, own_mb, peak_rss_mb
from shared import events as ev
from shared.bus import EventBus
from shared.events import decode
from tests.factories import backdate
from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import System, env_for, open_system


def build_tree(root: Path, files: int, per_dir: int) -> None:
    payload = b"\xff\xd8\xff\xe0" + b"\0" * 60
    for i in range(files):
        d = root / f"{(i // per_dir) // 50:03d}" / f"{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"IMG_{i:07d}.jpg").write_bytes(payload)


def walk(root: str, *, with_stat: bool = False) -> int:
    """A bare recursive os.scandir walk (the floor of a *new*-mode rescan); with `with_stat`,
    also a stat of every file (the floor of a *modified*-mode rescan). Returns the files."""
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    if with_stat:
                        entry.stat(follow_symlinks=False)
                    count += 1
    return count


def spawn(system: System, n: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, **env_for(system.settings), "SHOEBOX_LIBRARY_SCAN_ENABLED": "false"}
    return [subprocess.Popen([sys.executable, "-m", "services.scanner"], env=env) for _ in range(n)]


async def timed_scan(
    system: System, admin: dict[str, str], lib: str, body: dict[str, bool] | None = None
) -> tuple[float, float, dict]:
    """(seconds until the scanners recorded the scan's end, seconds until the read models
    show it, final status)."""
    bus = EventBus(system.ctx.nc, system.settings.nats)
    # The scan's own subject, pushed as NATS stores its events: a poll of the API (or of NATS)
    # every few ms would take a share of the cores the scan is measured on.
    sub = await system.ctx.nc.subscribe(bus.aggregate_subject("scans", lib))
    started = time.perf_counter()
    r = await system.client.post(f"/api/libraries/{lib}/scan", headers=admin, json=body)
    assert r.status_code == 204, r.text
    scan_id = (await ok(await system.client.get(f"/api/libraries/{lib}/scan", headers=admin)))[
        "scanId"
    ]
    try:
        while True:
            last = decode((await sub.next_msg(timeout=600)).data)
            if isinstance(last, ev.LibraryScanFinished) and str(last.scan_id) == scan_id:
                scanned = time.perf_counter() - started
                break
    finally:
        await sub.unsubscribe()
    while True:
        state = await ok(await system.client.get(f"/api/libraries/{lib}/scan", headers=admin))
        if state["scanId"] == scan_id and state["state"] == "finished":
            done = time.perf_counter() - started
            return scanned, done, state
        await asyncio.sleep(0.005)


async def main(files: int, per_dir: int, counts: tuple[int, ...] = (1, 2)) -> None:
    logging.basicConfig(level=logging.WARNING)
    with infra() as inf, tempfile.TemporaryDirectory(prefix="sbscan-") as tmp:
        media = Path(tmp) / "media"
        t = time.perf_counter()
        build_tree(media, files, per_dir)
        backdate(media)  # a library that has sat on disk (see MTIME_GUARD_NS)
        print(
            f"tree: {files:,} files in {files // per_dir:,} folders "
            f"(built in {time.perf_counter() - t:.1f} s); "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        walks = []
        for _ in range(3):
            t = time.perf_counter()
            assert walk(str(media)) == files
            walks.append(time.perf_counter() - t)
        floor = min(walks)
        print(f"bare os.scandir walk (floor, best of 3):   {floor:7.3f} s")
        stat_walks = []
        for _ in range(3):
            t = time.perf_counter()
            assert walk(str(media), with_stat=True) == files
            stat_walks.append(time.perf_counter() - t)
        stat_floor = min(stat_walks)
        print(f"walk + stat of every file (floor of modified, best of 3): {stat_floor:7.3f} s")
        async with open_system(inf, Path(tmp)) as system:
            admin = await sign_up_admin(system)
            user, _ = await create_user(system, admin, "bench@example.com", str(media))
            results = {}
            for n in counts:
                scanners = spawn(system, n)
                try:
                    lib = (await external_library(system, admin, user["id"], [str(media)]))["id"]
                    scanned, first, state = await timed_scan(system, admin, lib)
                    assert state["new"] == files, state
                    rescans = []
                    for _ in range(3):
                        _, elapsed, state = await timed_scan(system, admin, lib)
                        assert state["new"] == state["missing"] == 0
                        rescans.append(elapsed)
                    modified = []
                    for _ in range(3):
                        _, elapsed, state = await timed_scan(
                            system, admin, lib, {"refreshModifiedFiles": True}
                        )
                        assert state["new"] == state["changed"] == state["missing"] == 0
                        modified.append(elapsed)
                    rss = max(peak_rss_mb(p.pid) for p in scanners)
                    helpers = [c for p in scanners for c in children_of(p.pid)]
                    helper = (
                        (
                            max(peak_rss_mb(c) for c in helpers),
                            max(own_mb(c) for c in helpers),
                        )
                        if helpers
                        else (0.0, 0.0)
                    )
                    results[n] = (scanned, first, min(rescans), min(modified), rss, helper)
                finally:
                    for p in scanners:
                        p.terminate()
                        p.wait(15)
            for n, (scanned, first, rescan, modified, rss, helper) in results.items():
                print(
                    f"{n} scanner(s): first scan walked in {scanned:6.2f} s "
                    f"({files / scanned:7,.0f} files/s), projected in {first:6.2f} s "
                    f"({files / first:7,.0f} files/s); unchanged rescan {rescan:5.2f} s = "
                    f"{rescan / floor:4.1f}x the bare walk; unchanged modified-mode rescan "
                    f"{modified:5.2f} s = {modified / stat_floor:4.1f}x the walk with stat; "
                    f"peak RSS {rss:5.1f} MB; its listing helper {helper[0]:.1f} MB, "
                    f"{helper[1]:.1f} MB of it its own"
                )
            if 1 in results and 2 in results:
                print(
                    f"2 scanners vs 1, first scan: walked {results[1][0] / results[2][0]:.2f}x, "
                    f"end to end {results[1][1] / results[2][1]:.2f}x  ({os.cpu_count()} cores)"
                )
            print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-dir", type=int, default=100)
    parser.add_argument(
        "--scanners", default="1,2", help="scanner counts to run, comma-separated (1,2)"
    )
    args = parser.parse_args()
    counts = tuple(int(n) for n in args.scanners.split(","))
    asyncio.run(main(args.files, args.per_dir, counts))
