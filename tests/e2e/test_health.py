"""Liveness and readiness (shared/health.py): the api and each worker as real processes, and
`python -m shared.health URL` as the probe the images and manifests call."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from shared.infra import free_port, postmaster_pid, restart_postgres, start_postgres
from tests.system import Infra, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ["projector", "scanner", "metadata", "watcher"]


def probe(url: str) -> int:
    """The exit status of the stdlib probe."""
    return subprocess.run(
        [sys.executable, "-m", "shared.health", url, "2"], cwd=ROOT, capture_output=True
    ).returncode


async def status(url: str) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            r = await client.get(url)
        except httpx.HTTPError:
            return 0, {}
        return r.status_code, r.json()


async def _is(url: str, code: int) -> bool:
    return (await status(url))[0] == code


@pytest.fixture
def own_postgres() -> Iterator[tuple[object, str, Path]]:
    """A PostgreSQL of this test's own, which it may stop and start."""
    datadir = Path(tempfile.mkdtemp(prefix="sbh-", dir="/tmp")) / "pg"
    server, uri = start_postgres(datadir, cleanup_mode="stop")
    try:
        yield server, uri, datadir
    finally:
        server.cleanup()  # type: ignore[attr-defined]
        # A server started again by restart_postgres is not the one pgserver's handle stops.
        pid = postmaster_pid(datadir)
        if pid is not None:
            os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(30)


def spawn(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def test_readiness_is_503_while_postgresql_is_stopped_and_200_after(
    infra: Infra, own_postgres: tuple[object, str, Path], tmp_path: Path
) -> None:
    server, uri, datadir = own_postgres
    base = {
        **os.environ,
        "SHOEBOX_NATS_URL": infra.nats_url,
        "SHOEBOX_NAMESPACE": "h" + os.urandom(4).hex(),
        "SHOEBOX_DATABASE_URL": uri,
        "SHOEBOX_DATA": str(tmp_path),
        "SHOEBOX_LOG_LEVEL": "WARNING",
        "SHOEBOX_METADATA_WORKERS": "1",
    }
    urls: dict[str, str] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        port = free_port()
        urls[name] = f"http://127.0.0.1:{port}"
        key = "SHOEBOX_PORT" if name == "api" else "SHOEBOX_HEALTH_PORT"
        procs[name] = spawn(name, {**base, key: str(port)})

    try:
        # The projector creates the schema; the others start once it is ready (as compose's
        # depends_on conditions and the supervisor order them).
        start("projector")
        await eventually(
            lambda: _is(urls["projector"] + "/readyz", 200), 60, "the projector to be ready"
        )
        for name in ["api", *WORKERS[1:]]:
            start(name)

        async def every(path: str, code: int) -> bool:
            seen = {n: (await status(u + path))[0] for n, u in urls.items()}
            if any(c != code for c in seen.values()):
                print(path, seen, {n: p.poll() for n, p in procs.items()})
            return all(c == code for c in seen.values())

        await eventually(lambda: every("/livez", 200), 60, "every service to be live")
        await eventually(lambda: every("/readyz", 200), 60, "every service to be ready")
        assert all(probe(u + "/readyz") == 0 for u in urls.values())
        code, body = await status(urls["scanner"] + "/readyz")
        assert body["checks"] == {"nats": "ok", "postgres": "ok", "consumer": "ok"}

        server.cleanup()  # type: ignore[attr-defined]  # PostgreSQL stops
        await eventually(lambda: every("/readyz", 503), 30, "readiness to fail without PG")
        for name, url in urls.items():
            code, body = await status(url + "/readyz")
            assert code == 503 and body["status"] == "unready", name
            assert body["checks"]["nats"] == "ok", name  # type: ignore[index]
            assert body["checks"]["postgres"] != "ok", name  # type: ignore[index]
            assert "postgres" in str(body["reason"]), name
            assert (await status(url + "/livez"))[0] == 200, name  # alive all the same
        assert probe(urls["api"] + "/readyz") == 1
        assert probe(urls["api"] + "/livez") == 0

        restart_postgres(server, datadir)
        await eventually(lambda: every("/readyz", 200), 60, "readiness once PG is back")
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # Nothing answers once they are gone: the probe says so.
    assert probe(urls["scanner"] + "/livez") == 1


def test_the_probe_fails_on_a_closed_port_and_an_answer_that_is_not_200() -> None:
    assert probe(f"http://127.0.0.1:{free_port()}/livez") == 1
    assert probe("not a url") == 1


async def test_a_worker_health_port_answers_404_elsewhere_and_json_on_readyz() -> None:
    import asyncio

    from shared.health import Health, serve_health

    health = Health("test")
    port = free_port()
    server = await serve_health(health, "127.0.0.1", port)
    try:
        assert (await status(f"http://127.0.0.1:{port}/livez"))[0] == 200
        code, body = await status(f"http://127.0.0.1:{port}/readyz")
        assert code == 503 and "starting" in json.dumps(body)
        ok = asyncio.Event()

        async def fine() -> str | None:
            return None if ok.is_set() else "not yet"

        health.add("thing", fine)
        assert (await status(f"http://127.0.0.1:{port}/readyz"))[0] == 503
        ok.set()
        assert (await status(f"http://127.0.0.1:{port}/readyz"))[0] == 200
        assert (await status(f"http://127.0.0.1:{port}/nope"))[0] == 404
    finally:
        server.close()
