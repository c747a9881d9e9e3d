"""Watch benchmark: create-to-listed latency (inotify and polling), a burst, and RSS.

Run: `.venv/bin/python bench/watch.py [--files 1000] [--batch 50] [--interval 1000]
[--burst 100000] [--folders 100000]`. The whole system runs: api and projector in this
process, a scanner and a watcher as processes of their own (`python -m services.*`, watching
switched on through the environment). Prints, in one run:

* create-to-listed latency for `--files` files written in batches of `--batch` into new
  folders, each file timed from its close to the moment its asset is in the read model the
  API lists from (polled every 10 ms): median and p95, with inotify and with polling every
  `--interval` ms, next to the floor each cannot beat, its settle window (1 s for inotify, one
  interval for polling: a folder is handed to the scanner only once that long quiet);
* a burst: `--burst` files written as fast as possible into 100-file folders; the time until
  all of them are listed, and whether any was lost (watcher alone, no scan);
* the watcher's peak RSS (VmHWM) watching a tree of `--folders` folders, with inotify when
  `fs.inotify.max_user_watches` leaves room for them (else with polling, said so), next to the
  same process's RSS idle (the floor), and the number of inotify watches it holds.

Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bench.common import infra, peak_rss_mb
from services.watcher.limits import inotify_limits
from tests.factories import jpeg_bytes
from tests.helpers import create_user, external_library, sign_up_admin
from tests.system import System, env_for, open_system

PAYLOAD = jpeg_bytes()
_LISTED = text("SELECT original_path FROM assets WHERE library_id = :lib")


def spawn(
    system: System, service: str, log: Path, **env: str
) -> tuple[subprocess.Popen[bytes], Path]:
    full = {
        **os.environ,
        **env_for(system.settings),
        "SHOEBOX_LIBRARY_SCAN_ENABLED": "false",
        "SHOEBOX_LOG_LEVEL": "INFO",
        **env,
    }
    out = log.open("wb")
    p = subprocess.Popen(
        [sys.executable, "-m", f"services.{service}"], env=full, stdout=out, stderr=out
    )
    return p, log


def stop(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def inotify_watches(pid: int) -> int:
    """Watches held by the process's inotify instances (one `inotify wd:` line each)."""
    total = 0
    for fd in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            total += fd.read_text().count("inotify wd:")
        except OSError:
            continue
    return total


async def listed(system: System, lib: str) -> set[str]:
    async with system.ctx.engine.connect() as conn:
        return {r[0] for r in (await conn.execute(_LISTED, {"lib": lib})).all()}


async def wait_logged(log: Path, needle: str, timeout: float = 600) -> float:
    started = time.perf_counter()
    while needle not in log.read_text(errors="replace"):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{needle!r} not in {log}")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def wait_watching(system: System, lib: str, root: Path) -> None:
    """Probe files until one is listed: the watcher is watching (and has caught up)."""
    n = 0
    while True:
        n += 1
        probe = root / f"probe-{n}.jpg"
        probe.write_bytes(PAYLOAD)
        deadline = time.perf_counter() + 3
        while time.perf_counter() < deadline:
            if str(probe) in await listed(system, lib):
                return
            await asyncio.sleep(0.05)


async def latency(
    system: System,
    admin: dict[str, str],
    owner: str,
    media: Path,
    mode: str,
    args: argparse.Namespace,
) -> list[float]:
    root = media / f"lat-{mode}"
    root.mkdir()
    lib = str((await external_library(system, admin, owner, [str(root)]))["id"])
    polling = "true" if mode == "polling" else "false"
    watcher, _ = spawn(
        system,
        "watcher",
        media.parent / f"watcher-{mode}.log",
        SHOEBOX_LIBRARY_WATCH_ENABLED="true",
        SHOEBOX_LIBRARY_WATCH_USE_POLLING=polling,
        SHOEBOX_LIBRARY_WATCH_INTERVAL=str(args.interval),
    )
    try:
        await wait_watching(system, lib, root)
        closed: dict[str, float] = {}
        seen: dict[str, float] = {}
        for b in range(0, args.files, args.batch):
            folder = root / f"batch-{b // args.batch:04d}"
            folder.mkdir()
            for i in range(b, min(b + args.batch, args.files)):
                path = folder / f"IMG_{i:05d}.jpg"
                path.write_bytes(PAYLOAD)
                closed[str(path)] = time.perf_counter()
            # Pacing, the input: batches arrive a quarter of a second apart, as from a camera
            # upload or a sync tool, not all at once.
            await asyncio.sleep(0.25)
            now = time.perf_counter()
            for p in (await listed(system, lib)) & closed.keys() - seen.keys():
                seen[p] = now
        deadline = time.perf_counter() + 120
        while len(seen) < len(closed) and time.perf_counter() < deadline:
            now = time.perf_counter()
            for p in (await listed(system, lib)) & closed.keys() - seen.keys():
                seen[p] = now
            await asyncio.sleep(0.01)
        lost = len(closed) - len(seen)
        if lost:
            print(f"  {mode}: {lost} files never listed within 120 s")
        return [seen[p] - closed[p] for p in seen]
    finally:
        stop(watcher)


async def burst(system: System, admin: dict[str, str], owner: str, media: Path, files: int) -> None:
    root = media / "burst"
    root.mkdir()
    lib = str((await external_library(system, admin, owner, [str(root)]))["id"])
    watcher, _ = spawn(
        system, "watcher", media.parent / "watcher-burst.log", SHOEBOX_LIBRARY_WATCH_ENABLED="true"
    )
    try:
        await wait_watching(system, lib, root)
        written: set[str] = set()
        started = time.perf_counter()
        for i in range(files):
            folder = root / f"card-{i // 100:04d}"
            if i % 100 == 0:
                folder.mkdir()
            path = folder / f"IMG_{i:06d}.jpg"
            path.write_bytes(PAYLOAD)
            written.add(str(path))
        wrote = time.perf_counter() - started
        deadline = time.perf_counter() + max(120, files / 200)
        missing = written
        while missing and time.perf_counter() < deadline:
            missing = written - await listed(system, lib)
            await asyncio.sleep(0.2)
        done = time.perf_counter() - started
        print(
            f"burst: {files:,} files in {files // 100:,} new folders written in {wrote:.1f} s; "
            f"all listed {done:.1f} s after the first ({files / done:,.0f} files/s), "
            f"{len(missing):,} lost (inotify alone, no scan)"
        )
    finally:
        stop(watcher)


async def rss(system: System, admin: dict[str, str], owner: str, media: Path, folders: int) -> None:
    root = media / "tree"
    t = time.perf_counter()
    for i in range(folders):
        (root / f"{i // 1000:03d}" / f"{i % 1000:03d}").mkdir(parents=True)
    made = time.perf_counter() - t
    total = folders + folders // 1000 + 1
    limits = inotify_limits()
    room = limits.watches is None or limits.watches > total + 10_000
    how = "inotify" if room else "polling (max_user_watches too low)"
    env = {"SHOEBOX_LIBRARY_WATCH_ENABLED": "true"}
    if not room:
        env["SHOEBOX_LIBRARY_WATCH_USE_POLLING"] = "true"
    log = media.parent / "watcher-rss.log"
    watcher, _ = spawn(system, "watcher", log, **env)
    try:
        await wait_logged(log, "started")
        await asyncio.sleep(1)  # the input: an idle watcher settles after its first reload
        idle = rss_mb(watcher.pid)
        await external_library(system, admin, owner, [str(root)])
        took = await wait_logged(log, "watching " + str(root))
        peak = peak_rss_mb(watcher.pid)
        watches = inotify_watches(watcher.pid)
        print(
            f"RSS: watcher idle {idle:.1f} MB (floor); watching {total:,} folders "
            f"(made in {made:.1f} s) with {how}: peak {peak:.1f} MB (+{peak - idle:.1f} MB, "
            f"{(peak - idle) * 1024 * 1024 / total:,.0f} B per folder), {watches:,} inotify "
            f"watches (every library), watching after {took:.1f} s; "
            f"max_user_watches = {limits.watches}"
        )
    finally:
        stop(watcher)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    with infra() as inf, tempfile.TemporaryDirectory(prefix="sbwatch-") as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        async with open_system(inf, Path(tmp)) as system:
            admin = await sign_up_admin(system)
            user, _ = await create_user(system, admin, "bench@example.com", str(media))
            owner = str(user["id"])
            scanner, _ = spawn(system, "scanner", Path(tmp) / "scanner.log")
            try:
                if args.files:
                    for mode, floor in (("inotify", 1.0), ("polling", args.interval / 1000)):
                        lat = await latency(system, admin, owner, media, mode, args)
                        print(
                            f"create-to-listed, {mode}"
                            + (f" every {args.interval} ms" if mode == "polling" else "")
                            + f": {len(lat):,} files, median {statistics.median(lat):.2f} s, "
                            f"p95 {pct(lat, 0.95):.2f} s (floor: settle window {floor:.2f} s)"
                        )
                if args.burst:
                    await burst(system, admin, owner, media, args.burst)
            finally:
                stop(scanner)
            if args.folders:
                await rss(system, admin, owner, media, args.folders)
        print(f"({os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--interval", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=100_000)
    asyncio.run(main(parser.parse_args()))
