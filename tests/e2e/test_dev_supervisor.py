"""`make run`'s supervisor (deploy/dev.py) as a real process: it brings a killed PostgreSQL back,
and a stop leaves nothing running, the restarted PostgreSQL included."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest

from shared.infra import free_port, postmaster_pid
from tests.system import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _ours(data: Path) -> list[psutil.Process]:
    """Every process whose command line or working files name the data folder."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(data) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


async def test_a_killed_postgresql_comes_back_and_a_stop_ends_everything() -> None:
    # Short: PostgreSQL's socket lives in its data folder (a path of about 100 bytes at most).
    data = Path(tempfile.mkdtemp(prefix="sbdev-", dir="/tmp"))
    port = free_port()
    env = {
        **os.environ,
        "SHOEBOX_DATA": str(data),
        "SHOEBOX_PORT": str(port),
        "SHOEBOX_NATS_PORT": str(free_port()),
        "SHOEBOX_LOG_LEVEL": "WARNING",
    }
    env.pop("SHOEBOX_NATS_URL", None)
    env.pop("SHOEBOX_DATABASE_URL", None)
    dev = subprocess.Popen(
        [sys.executable, "-m", "deploy.dev"], cwd=ROOT, env=env, start_new_session=True
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        async with httpx.AsyncClient(timeout=5) as client:

            async def answers(path: str) -> bool:
                try:
                    r = await client.get(f"{api}{path}")
                except httpx.HTTPError:
                    return False
                return r.status_code == 200

            await eventually(lambda: answers("/server/ping"), 90, "make run to be up")
            # /server/config reads the database (whether the server has an admin yet).
            await eventually(lambda: answers("/server/config"), 30, "the database to answer")
            first = postmaster_pid(data / "pg")
            assert first is not None
            os.kill(first, signal.SIGKILL)

            async def back() -> bool:
                pid = postmaster_pid(data / "pg")
                return pid not in (None, first) and await answers("/server/config")

            await eventually(back, 60, "the supervisor to start PostgreSQL again")
        dev.send_signal(signal.SIGTERM)
        dev.wait(60)

        async def all_gone() -> bool:
            return not _ours(data)

        await eventually(all_gone, 30, "every process of the stopped system to end")
        assert postmaster_pid(data / "pg") is None
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        for proc in _ours(data):
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def _service(dev: subprocess.Popen[bytes], name: str) -> psutil.Process | None:
    """The supervisor's child running `services.<name>`, if any."""
    for child in psutil.Process(dev.pid).children():
        try:
            if f"services.{name}" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


async def test_the_supervisor_says_when_all_is_ready_and_restarts_a_service_that_hangs(
    tmp_path: Path,
) -> None:
    data = Path(tempfile.mkdtemp(prefix="sbdev-", dir="/tmp"))
    log = tmp_path / "dev.log"
    env = {
        **os.environ,
        "SHOEBOX_DATA": str(data),
        "SHOEBOX_PORT": str(free_port()),
        "SHOEBOX_NATS_PORT": str(free_port()),
        "SHOEBOX_LOG_LEVEL": "INFO",
        "SHOEBOX_METADATA_WORKERS": "1",
    }
    env.pop("SHOEBOX_NATS_URL", None)
    env.pop("SHOEBOX_DATABASE_URL", None)
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "deploy.dev"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stderr=out,
            stdout=out,
        )
    try:

        async def said(text: str) -> bool:
            return text in log.read_text(errors="replace")

        await eventually(lambda: said("every service is ready"), 120, "the ready line")
        hung = _service(dev, "scanner")
        assert hung is not None
        hung.suspend()  # alive to waitpid, but its event loop answers nothing

        async def replaced() -> bool:
            now = _service(dev, "scanner")
            return now is not None and now.pid != hung.pid

        await eventually(replaced, 60, "the supervisor to replace the hung scanner")
        assert await said("scanner failed 3 liveness checks")
        assert not psutil.pid_exists(hung.pid) or hung.status() == psutil.STATUS_ZOMBIE
        dev.send_signal(signal.SIGTERM)
        dev.wait(60)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        for proc in _ours(data):
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)
