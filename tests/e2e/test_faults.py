"""Faults an operator meets, against the services as real processes on their own nats-server and
PostgreSQL: PostgreSQL restarted mid-projection, its connections cut again and again, stopped
for 30 s; nats-server killed with metadata work pending; a metadata replica killed mid-file.

Every run scans the same library of a few thousand real JPEGs (some with EXIF) into a fresh
system and ends exact: one asset per file, each with its metadata and thumbnail, each metadata
fact once in the stream, the scan's totals right, no process left, and the scan finished within
the clean run's time (measured once in this module) plus the outage plus 30 s: a liveness
bound, not a speed figure.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats
import psutil
import pytest
from nats.js import api
from PIL import Image

from shared import events as ev
from shared.infra import free_port, postmaster_pid, restart_postgres, start_nats, start_postgres
from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import Infra, System, env_for, eventually, open_system

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# bench/faults.py runs the same tests on a bigger library.
FILES = int(os.environ.get("SHOEBOX_FAULTS_FILES", "2000"))
DIRS = max(1, FILES // 50)
EXIF_EVERY = 20  # every 20th file carries a camera make, model and date taken
GRACE = 30.0  # seconds the bound allows past the baseline and the outage
OUTAGE = 30.0  # seconds PostgreSQL stays stopped
CUTS = 5.0  # seconds during which every connection to the database is cut
ROOT = Path(__file__).resolve().parents[2]


def _jpeg(i: int) -> bytes:
    """A small JPEG of its own colour (its own SHA-1), with EXIF for every EXIF_EVERY-th."""
    image = Image.new("RGB", (24, 16), (i % 251, (i // 251) % 251, 90))
    buf = io.BytesIO()
    if i % EXIF_EVERY == 0:
        exif = Image.Exif()
        exif[0x010F] = "FaultCam"  # Make
        exif[0x0110] = f"Model {i}"  # Model
        exif.get_ifd(0x8769)[0x9003] = "2021:06:15 12:00:00"  # DateTimeOriginal
        image.save(buf, "JPEG", quality=70, exif=exif)
    else:
        image.save(buf, "JPEG", quality=70)
    return buf.getvalue()


@dataclass
class Lab:
    """The module's own nats-server and PostgreSQL (the faults hit them), and the library."""

    root: Path
    nats_port: int
    nats: subprocess.Popen[bytes]
    pg: Any
    pg_dir: Path
    infra: Infra
    media: Path
    baseline: float = 0.0

    def kill_nats(self) -> None:
        self.nats.send_signal(signal.SIGKILL)
        self.nats.wait(10)

    def start_nats(self) -> None:
        self.nats = start_nats(
            self.root / "nats",
            self.nats_port,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def stop_postgres(self) -> None:
        """A fast shutdown (SIGINT to the postmaster), as `pg_ctl stop -m fast` does."""
        pid = postmaster_pid(self.pg_dir)
        assert pid is not None, "PostgreSQL should be running"
        os.kill(pid, signal.SIGINT)

        async def stopped() -> bool:
            return postmaster_pid(self.pg_dir) is None

        await eventually(stopped, 30, "PostgreSQL to stop")

    async def start_postgres(self) -> None:
        await asyncio.to_thread(restart_postgres, self.pg, self.pg_dir)


def _fault_library(media: Path) -> None:
    for i in range(FILES):
        folder = media / f"roll-{i % DIRS:02d}" / ("nested" if i % DIRS % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img-{i:05d}.jpg").write_bytes(_jpeg(i))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with open_lab(_fault_library) as the_lab:
        yield the_lab


@contextlib.contextmanager
def open_lab(build: Callable[[Path], None]) -> Iterator[Lab]:
    """A nats-server and a PostgreSQL of their own, over a library `build` writes."""
    root = Path(tempfile.mkdtemp(prefix="sbf-", dir="/tmp"))
    media = root / "media"
    build(media)
    port = free_port()
    nats_proc = start_nats(
        root / "nats", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    pg, uri = start_postgres(root / "pg", cleanup_mode="stop")
    infra = Infra(nats_url=f"nats://127.0.0.1:{port}", pg_uri=uri, root=root)
    the_lab = Lab(root, port, nats_proc, pg, (root / "pg").resolve(), infra, media)
    try:
        yield the_lab
    finally:
        with contextlib.suppress(ProcessLookupError):
            the_lab.nats.send_signal(signal.SIGCONT)  # a test that froze it
        the_lab.nats.terminate()
        the_lab.nats.wait(10)
        if postmaster_pid(the_lab.pg_dir) is None:  # stopped by a failed test: clean it up
            with contextlib.suppress(Exception):
                restart_postgres(pg, the_lab.pg_dir)
        pg.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Progress:
    assets: int
    distinct_paths: int
    done: int
    thumbnails: int
    with_make: int
    state: str | None
    files_seen: int
    new: int


@dataclass
class Run:
    """One fresh system on the lab's servers: the API in this process, projector, scanner and
    metadata as processes, each logging to its own file."""

    lab: Lab
    system: System
    admin: dict[str, str]
    library: str
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    started: float = 0.0

    def spawn(self, name: str, module: str, **env: str) -> subprocess.Popen[bytes]:
        full = {
            **os.environ,
            **env_for(self.system.settings),
            "SHOEBOX_LOG_LEVEL": "INFO",
            "SHOEBOX_LIBRARY_SCAN_ENABLED": "false",
            "SHOEBOX_SCAN_ACK_WAIT": "5",
            "SHOEBOX_METADATA_ACK_WAIT": "10",
            # Tight bounds: an outage that counted as the message's fault would dead-letter
            # folders and files at their second delivery (decision 0024).
            "SHOEBOX_CONSUMER_MAX_DELIVER": "2",
            "SHOEBOX_CONSUMER_BACKOFF": "0.5",
            **env,
        }
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module], env=full, cwd=ROOT, stderr=log, stdout=log
            )
        self.procs[name] = proc
        self.note_processes()
        return proc

    def note_processes(self) -> None:
        """Remember every process the services started (pool workers included), to check
        after the stop that none is left."""
        for proc in self.procs.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(proc.pid)
                for p in [parent, *parent.children(recursive=True)]:
                    self.seen.setdefault(p.pid, p)

    def workers(self, name: str) -> list[psutil.Process]:
        try:
            return psutil.Process(self.procs[name].pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    async def progress(self) -> Progress | None:
        """What the read models say, straight from PostgreSQL (None while it is down)."""
        try:
            conn = await asyncpg.connect(self.system.settings.db.url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS assets, count(DISTINCT original_path) AS paths, "
                "count(*) FILTER (WHERE metadata_status = 'done') AS done, "
                "count(*) FILTER (WHERE thumbnail_key IS NOT NULL) AS thumbs, "
                "count(*) FILTER (WHERE make = 'FaultCam') AS with_make "
                "FROM assets WHERE library_id = $1",
                uuid.UUID(self.library),
            )
            scan = await conn.fetchrow(
                "SELECT state, files_seen, new FROM scan_runs WHERE library_id = $1 "
                "ORDER BY requested_at DESC LIMIT 1",
                uuid.UUID(self.library),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        assert row is not None
        return Progress(
            row["assets"],
            row["paths"],
            row["done"],
            row["thumbs"],
            row["with_make"],
            scan["state"] if scan else None,
            scan["files_seen"] if scan else 0,
            scan["new"] if scan else 0,
        )

    async def scan(self) -> None:
        r = await self.system.client.post(f"/api/libraries/{self.library}/scan", headers=self.admin)
        assert r.status_code == 204, r.text
        self.started = time.monotonic()

    async def reach(self, what: str, test: Any, timeout: float = 120) -> Progress:
        """Wait until the read models pass `test(progress)`."""
        seen: Progress | None = None

        async def passed() -> bool:
            nonlocal seen
            self.note_processes()
            seen = await self.progress()
            return seen is not None and bool(test(seen))

        try:
            await eventually(passed, timeout, what)
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen {seen}; {await self.consumers()}") from None
        assert seen is not None
        return seen

    async def consumers(self) -> str:
        """Each durable consumer's state, for a wait that timed out: what is pending, in
        hand (unacked) and redelivered says whether work stalled in a handler or in NATS."""
        nats = self.system.settings.nats
        js = self.system.ctx.nc.jetstream()
        said = []
        for stream in ("EVENTS", "WORK"):
            try:
                for c in await js.consumers_info(nats.name(stream)):
                    said.append(
                        f"{stream}/{c.name}: pending {c.num_pending}, unacked "
                        f"{c.num_ack_pending}, redelivered {c.num_redelivered}, waiting "
                        f"{c.num_waiting}"
                    )
            except Exception as e:  # a diagnosis: say why there is none
                said.append(f"{stream}: {type(e).__name__}: {e}")
        return "; ".join(said)

    async def finished(self, timeout: float) -> float:
        """Wait until the scan is finished and every asset has its metadata; its seconds."""
        await self.reach(
            "the scan to finish with every file's metadata and thumbnail",
            lambda p: p.state == "finished" and p.done == FILES and p.thumbnails == FILES,
            timeout,
        )
        return time.monotonic() - self.started

    async def check_exact(self) -> None:
        p = await self.progress()
        assert p is not None
        assert (p.assets, p.distinct_paths, p.done, p.thumbnails) == (FILES,) * 4, p
        assert p.with_make == FILES // EXIF_EVERY, p
        assert (p.files_seen, p.new) == (FILES, FILES), f"the scan's totals: {p}"
        # Through the API too: its pool survived whatever PostgreSQL went through.
        stats = await ok(
            await self.system.client.get(
                f"/api/libraries/{self.library}/statistics", headers=self.admin
            )
        )
        assert stats["total"] == FILES, stats
        counts = await event_counts(self.system)
        ids = counts.pop("_ids")
        dead = dict(counts.get("DeliveryFailed", {}))
        assert not dead, f"an outage is no message's fault, yet {len(dead)} were given up on"
        assert ids["events"] == ids["distinct"], f"{ids['events'] - ids['distinct']} duplicates"
        born = counts["births"]
        assert len(born) == FILES and set(born.values()) == {1}
        facts = collections.Counter(counts["MetadataExtracted"]) + collections.Counter(
            counts["MetadataFailed"]
        )
        twice = {a: n for a, n in facts.items() if n != 1}
        assert len(facts) == FILES and not twice, f"metadata facts stored twice: {twice}"

    async def stop(self) -> None:
        """SIGTERM every service; each must exit, and every process seen must be gone."""
        self.note_processes()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"{name} did not stop within 20 s of SIGTERM") from None

        def gone(p: psutil.Process) -> bool:
            try:
                return p.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        async def all_gone() -> bool:
            return all(gone(p) for p in self.seen.values())

        await eventually(all_gone, 10, "every process the services started to be gone")

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def all_logs(self) -> str:
        return "".join(self.log(p.stem) for p in sorted(self.logs.glob("*.log")))


async def event_counts(system: System) -> dict[str, dict[str, int]]:
    """Every event of the system's EVENTS stream, counted per type and asset; `births` counts
    each asset's births (a FileDiscovered, or its file in a FilesDiscovered)."""
    nats_settings = system.settings.nats
    nc = await nats.connect(nats_settings.url)
    try:
        js = nc.jetstream()
        stream = nats_settings.name("EVENTS")
        last = (await js.stream_info(stream)).state.last_seq
        sub = await js.pull_subscribe(
            nats_settings.subject("events", ">"),
            stream=stream,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.NONE
            ),
        )
        counts: dict[str, dict[str, int]] = collections.defaultdict(collections.Counter)
        event_ids: set[uuid.UUID] = set()
        total = seq = 0
        while seq < last:
            for msg in await sub.fetch(1000, timeout=5):
                seq = msg.metadata.sequence.stream
                event = ev.decode(msg.data)
                total += 1
                event_ids.add(event.event_id)
                counts[type(event).__name__][str(event.stream_id)] += 1
                if isinstance(event, ev.FilesDiscovered):
                    for born in event.discoveries():
                        counts["births"][str(born.stream_id)] += 1
                elif isinstance(event, ev.FileDiscovered):
                    counts["births"][str(event.stream_id)] += 1
        counts["_ids"] = {"events": total, "distinct": len(event_ids)}
        return counts
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def fresh_run(
    lab: Lab, tmp_path: Path, metadata_replicas: int = 1, **scanner_env: str
) -> AsyncIterator[Run]:
    """A new system (own namespace and database) over the lab's library, services running."""
    async with open_system(lab.infra, tmp_path, projector=False) as system:
        logs = tmp_path / "logs"
        logs.mkdir()
        run = Run(lab, system, {}, "", logs)
        try:
            run.spawn("projector", "services.projector")
            run.admin = await sign_up_admin(system)
            owner, _ = await create_user(system, run.admin, "owner@example.com", str(lab.media))
            run.library = (
                await external_library(system, run.admin, owner["id"], [str(lab.media)])
            )["id"]
            run.spawn("scanner", "services.scanner", **scanner_env)
            workers = str(2 // max(1, metadata_replicas))
            for i in range(metadata_replicas):
                run.spawn(f"metadata-{i}", "services.metadata", SHOEBOX_METADATA_WORKERS=workers)
            yield run
        finally:
            for proc in run.procs.values():  # whatever a failed test left running
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            for p in run.seen.values():
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()


def _record(line: str) -> tuple[str, str]:
    """(level, message) of a log line: JSON (the services' format off a terminal) or text."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            return str(record.get("level", "")), str(record.get("message", ""))
    head, _, message = line.partition(": ")
    level = next((w for w in head.split() if w in ("DEBUG", "INFO", "WARNING", "ERROR")), "")
    return level, message


def quiet(run: Run, what: str, *, projector: bool = False) -> None:
    """The logs name the outage once per service, with its cause, and hold no traceback."""
    for log in sorted(run.logs.glob("*.log")):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name}:\n{text[-5000:]}"
        records = [_record(line) for line in text.splitlines()]
        warnings = [(level, msg) for level, msg in records if f"{what} unavailable (" in msg]
        assert all(level == "WARNING" for level, _ in warnings), warnings
        # One line per part of the service that met the outage (the scanner's folder tasks
        # and its moves consumer each say so).
        parts = collections.Counter(msg.split(":")[0] for _, msg in warnings)
        assert all(n == 1 for n in parts.values()), f"{log.name} repeated the outage: {warnings}"
    if projector:
        assert any(
            msg.startswith(f"projector: {what} unavailable (")
            for _, msg in map(_record, run.log("projector").splitlines())
        )


def bound(lab: Lab, outage: float) -> float:
    assert lab.baseline > 0, "the clean run measures the baseline first"
    return lab.baseline + outage + GRACE


async def test_a_clean_scan_is_exact_and_its_logs_are_quiet(lab: Lab, tmp_path: Path) -> None:
    """The baseline: the same library scanned without a fault (its time bounds the others)."""
    async with fresh_run(lab, tmp_path) as run:
        await run.scan()
        lab.baseline = await run.finished(180)
        record("none (baseline)", scan=lab.baseline)
        await run.check_exact()
        await run.stop()
        logs = run.all_logs()
    # An idle consumer's empty fetch is the normal state: never an error with a traceback.
    assert "Traceback" not in logs and " ERROR " not in logs, logs[-3000:]
    assert " WARNING " not in logs, logs[-3000:]
    assert "TimeoutError" not in logs, logs[-3000:]


def record(fault: str, **figures: float) -> None:
    """For bench/faults.py: one JSON line per run in $SHOEBOX_FAULTS_REPORT, when set."""
    report = os.environ.get("SHOEBOX_FAULTS_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps({"fault": fault, "files": FILES, **figures}) + "\n")


async def _fault_run(
    lab: Lab, run: Run, name: str, fault: Any, *, when: Any, what: str
) -> tuple[float, float]:
    """Scan, wait until `when(progress)`, apply `fault()`; returns (outage, scan seconds)."""
    await run.scan()
    at = await run.reach(what, when)
    assert at.done < FILES, f"the fault should land before the metadata is done: {at}"
    began = time.monotonic()
    await fault()
    outage = time.monotonic() - began
    took = await run.finished(bound(lab, outage) + 120)
    recovery = run.started + took - began
    record(
        name,
        fault_at=began - run.started,
        outage=outage,
        recovery=recovery,
        scan=took,
        baseline=lab.baseline,
    )
    await run.check_exact()
    await run.stop()
    return outage, took


async def test_postgresql_restarted_mid_projection(lab: Lab, tmp_path: Path) -> None:
    async def restart() -> None:
        await lab.stop_postgres()
        await lab.start_postgres()

    async with fresh_run(lab, tmp_path) as run:
        outage, took = await _fault_run(
            lab,
            run,
            "PostgreSQL restarted",
            restart,
            when=lambda p: p.assets >= FILES // 3,
            what="a third projected",
        )
        # A restart between two batches is met by the pool's pre-ping, not by the projector:
        # it need not log an outage, but nothing may log one twice or with a traceback.
        quiet(run, "PostgreSQL")
    print(f"restart: outage {outage:.1f} s, scan {took:.1f} s, baseline {lab.baseline:.1f} s")
    assert took <= bound(lab, outage), (took, outage, lab.baseline)


async def test_postgresql_backends_terminated_for_seconds(lab: Lab, tmp_path: Path) -> None:
    admin_db = lab.infra.pg_uri

    async with fresh_run(lab, tmp_path) as run:
        name = run.system.settings.nats.namespace

        async def terminate() -> None:
            conn = await asyncpg.connect(admin_db)
            try:
                end = time.monotonic() + CUTS
                while time.monotonic() < end:
                    await conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = $1 AND pid <> pg_backend_pid()",
                        name,
                    )
                    await asyncio.sleep(0.1)  # the fault's own rhythm: a cut every 0.1 s
            finally:
                await conn.close()

        outage, took = await _fault_run(
            lab,
            run,
            "PostgreSQL backends terminated for 5 s",
            terminate,
            when=lambda p: p.assets >= FILES // 4,
            what="a quarter projected",
        )
        # The projector may sit between batches for the whole cut (its pool's pre-ping then
        # opens a fresh connection): it need not log an outage; nothing may log one twice.
        quiet(run, "PostgreSQL")
    print(f"terminate: outage {outage:.1f} s, scan {took:.1f} s, baseline {lab.baseline:.1f} s")
    assert took <= bound(lab, outage), (took, outage, lab.baseline)


async def test_postgresql_stopped_for_30_s(lab: Lab, tmp_path: Path) -> None:
    async with fresh_run(lab, tmp_path) as run:

        async def stop_30() -> None:
            await lab.stop_postgres()
            began = time.monotonic()
            # The API says the database is away (503, try again), not an internal error.
            r = await run.system.client.get(f"/api/libraries/{run.library}", headers=run.admin)
            assert r.status_code == 503, r.text
            assert r.json()["message"] == "PostgreSQL is unavailable for the moment; try again"
            assert r.headers["retry-after"] == "1"
            # The outage itself, not a wait for an outcome.
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - began)))
            await lab.start_postgres()

        outage, took = await _fault_run(
            lab,
            run,
            "PostgreSQL stopped for 30 s",
            stop_30,
            when=lambda p: p.assets >= FILES // 4,
            what="a quarter projected",
        )
        # The projector may sit between batches for the whole cut (its pool's pre-ping then
        # opens a fresh connection): it need not log an outage; nothing may log one twice.
        quiet(run, "PostgreSQL")
    print(f"stop 30 s: outage {outage:.1f} s, scan {took:.1f} s, baseline {lab.baseline:.1f} s")
    assert took <= bound(lab, outage), (took, outage, lab.baseline)


async def test_nats_killed_with_metadata_pending_finds_each_metadata_event_once(
    lab: Lab, tmp_path: Path
) -> None:
    async def kill_nats() -> None:
        lab.kill_nats()
        await asyncio.to_thread(lab.start_nats)

    async with fresh_run(lab, tmp_path) as run:
        outage, took = await _fault_run(
            lab,
            run,
            "nats-server killed (SIGKILL) and started again",
            kill_nats,
            when=lambda p: p.assets >= FILES // 2 and FILES // 10 <= p.done < p.assets - 100,
            what="metadata under way with work pending",
        )
        quiet(run, "NATS")
    print(f"nats kill: outage {outage:.1f} s, scan {took:.1f} s, baseline {lab.baseline:.1f} s")
    assert took <= bound(lab, outage), (took, outage, lab.baseline)


async def test_a_metadata_replica_killed_mid_file(lab: Lab, tmp_path: Path) -> None:
    async with fresh_run(lab, tmp_path, metadata_replicas=2) as run:
        victim = run.procs["metadata-0"]
        workers: list[psutil.Process] = []

        async def kill_replica() -> None:
            workers.extend(run.workers("metadata-0"))
            victim.send_signal(signal.SIGKILL)
            await asyncio.to_thread(victim.wait, 10)

        outage, took = await _fault_run(
            lab,
            run,
            "a metadata replica killed (SIGKILL), one of two",
            kill_replica,
            when=lambda p: FILES // 5 <= p.done < p.assets - 100,
            what="metadata under way on both replicas",
        )
        quiet(run, "NATS")
    print(f"replica kill: scan {took:.1f} s, baseline {lab.baseline:.1f} s")
    assert workers, "the killed replica had worker processes"
    assert took <= bound(lab, outage), (took, outage, lab.baseline)
