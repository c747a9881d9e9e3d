"""The million-file bench (`make bench-1m`): a big library through the whole system, every
service its own process as `make run` starts them, against floors measured in the same run.

Run: `.venv/bin/python bench/million.py [--files 1000000] [--per-dir 100] [--tree DIR]`.
The tree (tiny JPEG-headed files, backdated) is built once under the data folder
(`$SHOEBOX_DATA/bench-tree-<files>-<per-dir>`) and reused by later runs. Prints one table:

- floors: a bare os.scandir walk, and a walk that stats every file;
- first import with 1 and with 2 scanner processes (metadata service running): discovery to
  the assets listed by the API, files/s;
- unchanged *new*-mode and *modified*-mode rescans, each against its floor (walked again just
  before them), with the metadata service stopped and the read models caught up;
- replay of the whole stream, events/s, against a raw insert of the same asset rows;
- the CPU seconds of each service, PostgreSQL and the NATS server during each first import
  (what a second scanner finds left of the cores);
- peak RSS of the scanner, projector, api and metadata processes; the NATS server's RSS and
  its store on disk per million assets; the machine's load average before and after.

Asserts nothing but the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx

from bench.common import CpuTally, children_of, own_mb, peak_rss_mb
from bench.scan import build_tree, walk
from services.cli import replay
from services.projector.checkpoint import read_checkpoint
from shared.bus import EventBus, connect
from shared.db import create_engine
from shared.infra import free_port, start_nats, start_postgres
from shared.pg import asyncpg_url
from shared.settings import Settings
from tests.factories import backdate
from tests.system import Infra, create_database, env_for, system_settings

ADMIN = {"email": "bench@example.com", "password": "bench-pass", "name": "Bench"}


def tree_for(files: int, per_dir: int, where: Path | None) -> Path:
    """The bench tree, built once (a marker file says it is complete)."""
    data = Path(os.environ.get("SHOEBOX_DATA", "data")).resolve()
    root = where or data / f"bench-tree-{files}-{per_dir}"
    marker = root / ".complete"
    if marker.exists():
        print(f"tree: {files:,} files in {files // per_dir:,} folders (reused: {root})")
        return root / "media"
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    build_tree(root / "media", files, per_dir)
    backdate(root / "media")  # a library that has sat on disk (see MTIME_GUARD_NS)
    marker.write_text(f"{files} {per_dir}\n")
    print(
        f"tree: {files:,} files in {files // per_dir:,} folders, built in "
        f"{time.perf_counter() - t:.0f} s ({root})"
    )
    return root / "media"


def best_of(n: int, fn: Any) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@contextlib.contextmanager
def infra(root: Path) -> Iterator[tuple[Infra, subprocess.Popen[bytes]]]:
    port = free_port()
    nats = start_nats(root / "nats", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server, uri = start_postgres(root / "pg", cleanup_mode="stop")
    try:
        yield Infra(nats_url=f"nats://127.0.0.1:{port}", pg_uri=uri, root=root), nats
    finally:
        nats.terminate()
        nats.wait(10)
        server.cleanup()


class Services:
    """The services as processes, as `make run` starts them."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.peaks: dict[str, float] = {}
        # What the system is doing: the children's peaks (RSS, own) are kept for each phase,
        # to say when they grew.
        self.phase = "import"
        self.helper_phases: dict[str, dict[str, tuple[float, float]]] = {}

    def start(self, name: str, n: int = 1, **extra: str) -> None:
        env = {**os.environ, **self.env, **extra}
        self.procs.setdefault(name, []).extend(
            subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env) for _ in range(n)
        )

    def sample(self) -> None:
        for name, procs in self.procs.items():
            for p in procs:
                with contextlib.suppress(OSError, ValueError):
                    self.peaks[name] = max(self.peaks.get(name, 0.0), peak_rss_mb(p.pid))
                    for child in children_of(p.pid):  # listing helpers, metadata workers
                        rss, own = peak_rss_mb(child), own_mb(child)
                        phases = self.helper_phases.setdefault(name, {})
                        was = phases.get(self.phase, (0.0, 0.0))
                        phases[self.phase] = (max(was[0], rss), max(was[1], own))

    def helper_peak(self, name: str) -> tuple[float, float] | None:
        """The peak RSS and own memory of the service's children over every phase."""
        phases = self.helper_phases.get(name)
        if not phases:
            return None
        return max(r for r, _ in phases.values()), max(o for _, o in phases.values())

    def stop(self, name: str) -> None:
        self.sample()
        procs = self.procs.pop(name, [])
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


async def wait_api(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/api/server/ping")).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not answer within 60 s")
        await asyncio.sleep(0.1)


async def scan(
    client: httpx.AsyncClient, headers: dict[str, str], lib: str, body: Any, procs: Services
) -> tuple[float, dict[str, Any]]:
    """Seconds from the request until the API shows the scan finished, and its status."""
    before = (await client.get(f"/api/libraries/{lib}/scan", headers=headers)).json()
    started = time.perf_counter()
    r = await client.post(f"/api/libraries/{lib}/scan", headers=headers, json=body)
    assert r.status_code == 204, r.text
    while True:
        state = (await client.get(f"/api/libraries/{lib}/scan", headers=headers)).json()
        if state.get("scanId") != before.get("scanId") and state.get("state") == "finished":
            return time.perf_counter() - started, state
        procs.sample()
        await asyncio.sleep(0.05)


async def caught_up(settings: Settings, timeout: float = 600) -> None:
    """Wait until the projector has applied the EVENTS stream's last event."""
    nc = await connect(settings.nats, "bench")
    engine = create_engine(settings.db.url, pool=False)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = await EventBus(nc, settings.nats).last_seq()
            if (await read_checkpoint(engine))[0] >= last:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the projector did not catch up within {timeout:.0f} s")
    finally:
        await engine.dispose()
        await nc.drain()


async def autovacuum_done(url: str, timeout: float = 600) -> float:
    """Wait until no autovacuum worker has run for a second (a million rows just written are
    vacuumed and analysed for a while, on the same two cores); the seconds waited."""
    conn = await asyncpg.connect(url)
    started = time.monotonic()
    quiet = 0
    try:
        while time.monotonic() - started < timeout and quiet < 5:
            workers = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            quiet = 0 if workers else quiet + 1
            await asyncio.sleep(0.2)
        return time.monotonic() - started
    finally:
        await conn.close()


async def assets_listed(client: httpx.AsyncClient, headers: dict[str, str], lib: str) -> int:
    stats = (await client.get(f"/api/libraries/{lib}/statistics", headers=headers)).json()
    return int(stats.get("total", stats.get("photos", 0)))


async def raw_copy_floor(url: str) -> tuple[int, float]:
    """The floor of replay: the live `assets` rows copied into a fresh table in one go."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM assets")
        await conn.execute("CREATE TABLE raw_assets (LIKE assets INCLUDING ALL)")
        columns = list(rows[0].keys()) if rows else []
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("raw_assets", records=rows, columns=columns)
        return len(rows), time.perf_counter() - started
    finally:
        await conn.close()


def du_mb(path: Path) -> float:
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_size
    return total / 2**20


async def signed_in(c: httpx.AsyncClient, media: Path) -> tuple[dict[str, str], str]:
    """The admin's headers and id, their external path set to the bench tree."""
    await wait_api(c)
    assert (await c.post("/api/auth/admin-sign-up", json=ADMIN)).status_code == 201
    token = (await c.post("/api/auth/login", json=ADMIN)).json()["accessToken"]
    admin = {"Authorization": f"Bearer {token}"}
    me = (await c.get("/api/users/me", headers=admin)).json()
    r = await c.put(
        f"/api/admin/users/{me['id']}", headers=admin, json={"externalPath": str(media)}
    )
    assert r.status_code == 200, r.text
    return admin, me["id"]


async def run_system(
    n: int, files: int, media: Path, floors: tuple[float, float], results: dict[str, str]
) -> float:
    """A fresh system (its own NATS, PostgreSQL and services, the metadata service running)
    imports the tree with `n` scanners; returns the first import's seconds. With one scanner,
    also the unchanged rescans, the NATS server's size and the replay."""
    walk_s, stat_s = floors
    root = Path(f"/tmp/sbm-{os.getpid()}-{n}")
    with infra(root) as (inf, nats_proc):
        settings = system_settings(inf, "m", await create_database(inf, "m"), root / "data")
        port = free_port()
        env = {
            **env_for(settings),
            "SHOEBOX_PORT": str(port),
            "SHOEBOX_LIBRARY_SCAN_ENABLED": "false",
        }
        procs = Services(env)
        procs.start("projector")
        procs.start("api")
        procs.start("metadata")
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
                admin, me = await signed_in(c, media)
                procs.start("scanner", n)
                body = {"ownerId": me, "importPaths": [str(media)], "name": f"{n} scanner(s)"}
                lib = (await c.post("/api/libraries", headers=admin, json=body)).json()["id"]
                tally = CpuTally(
                    {name: [p.pid for p in ps] for name, ps in procs.procs.items()}
                    | {"bench": [os.getpid()]}
                )
                tally.start()
                first, state = await scan(c, admin, lib, None, procs)
                tally.stop()
                results[f"CPU during the first import, {n} scanner(s)"] = tally.line(first)
                assert state["new"] == files, state
                assert await assets_listed(c, admin, lib) == files
                results[f"first import, {n} scanner(s)"] = (
                    f"{first:8.1f} s  {files / first:9,.0f} files/s"
                )
                if n == 1:
                    # The floors were walked on a quiet machine: the rescans are timed on one
                    # too, the metadata service stopped (its backlog of a million files would
                    # share the cores), the read models caught up and autovacuum done with the
                    # rows just written, as a nightly rescan meets a library; the floors again
                    # first.
                    procs.stop("metadata")
                    await caught_up(settings)
                    vacuum_s = await autovacuum_done(asyncpg_url(settings.db.url))
                    procs.phase = "new rescans"
                    walk_s = min(walk_s, best_of(3, lambda: walk(str(media))))
                    stat_s = min(stat_s, best_of(3, lambda: walk(str(media), with_stat=True)))
                    new_s = min([(await scan(c, admin, lib, None, procs))[0] for _ in range(2)])
                    modified = {"refreshModifiedFiles": True}
                    procs.phase = "modified rescans"
                    mod_s = min([(await scan(c, admin, lib, modified, procs))[0] for _ in range(3)])
                    procs.sample()
                    # The same without listing helpers (decision 0035), the scanner restarted.
                    procs.stop("scanner")
                    procs.start("scanner", SHOEBOX_SCAN_LISTERS="0")
                    alone_s = min(
                        [(await scan(c, admin, lib, modified, procs))[0] for _ in range(2)]
                    )
                    results["autovacuum after the import"] = (
                        f"{vacuum_s:8.1f} s  waited before the rescans"
                    )
                    results["unchanged new-mode rescan"] = (
                        f"{new_s:8.2f} s  {new_s / walk_s:8.1f}x the bare walk ({walk_s:.2f} s)"
                    )
                    results["unchanged modified-mode rescan"] = (
                        f"{mod_s:8.2f} s  {mod_s / stat_s:8.1f}x the walk with stat "
                        f"({stat_s:.2f} s); without listing helpers {alone_s:.2f} s = "
                        f"{alone_s / stat_s:.1f}x"
                    )
        finally:
            procs.stop_all()
        for name in ("scanner", "projector", "api", "metadata"):
            key = f"peak RSS {name} ({n} scanner(s) run)"
            results[key] = f"{procs.peaks.get(name, float('nan')):8.1f} MB"
            peak = procs.helper_peak(name)
            if peak is not None:
                what = "its listing helper" if name == "scanner" else "a worker at most"
                results[key] += f"; {what} {peak[0]:.1f} MB, {peak[1]:.1f} MB of it its own"
                phases = procs.helper_phases[name]
                if name == "scanner" and len(phases) > 1:
                    by_phase = ", ".join(f"{ph} {r:.1f}/{o:.1f}" for ph, (r, o) in phases.items())
                    results[key] += f" ({by_phase})"
        if n == 1:
            nats_rss = peak_rss_mb(nats_proc.pid)
            store = du_mb(root / "nats")
            per_million = 1_000_000 / files
            results["NATS server"] = (
                f"{nats_rss:8.1f} MB RSS, store {store:,.0f} MB "
                f"({store * per_million:,.0f} MB per million assets)"
            )
            tally = CpuTally({"replay (the bench)": [os.getpid()]})
            tally.start()
            applied, replay_s = await replay(settings, await create_database(inf, "r"), False)
            tally.stop()
            results["CPU during the replay"] = tally.line(replay_s)
            raw_url = asyncpg_url(settings.db.url)
            rows, raw_s = await raw_copy_floor(raw_url)
            results["replay"] = (
                f"{replay_s:8.1f} s  {applied / replay_s:9,.0f} events/s; raw copy of its "
                f"{rows:,} asset rows {raw_s:.1f} s: {replay_s / raw_s:.1f}x"
            )
    shutil.rmtree(root, ignore_errors=True)
    return first


async def main(files: int, per_dir: int, where: Path | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()
    media = tree_for(files, per_dir, where)
    floors = (
        best_of(3, lambda: walk(str(media))),
        best_of(3, lambda: walk(str(media), with_stat=True)),
    )
    results: dict[str, str] = {}
    # Each scanner count on a system of its own: the second import must not share the cores
    # with the first one's metadata backlog (a million files still to read).
    firsts = {n: await run_system(n, files, media, floors, results) for n in (1, 2)}
    results["2 scanners vs 1, first import"] = f"{firsts[1] / firsts[2]:8.2f}x"
    load_after = os.getloadavg()
    width = max(len(k) for k in results)
    print(
        f"machine: {os.cpu_count()} cores; load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f}"
    )
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--per-dir", type=int, default=100)
    parser.add_argument("--tree", type=Path, default=None)
    args = parser.parse_args()
    asyncio.run(main(args.files, args.per_dir, args.tree))
