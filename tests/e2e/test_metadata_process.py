"""The metadata service as a real process: killed or stopped while a worker is busy, it leaves
no process behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.helpers import SAMPLES, create_user, external_library, sign_up_admin
from tests.system import Infra, env_for, eventually, open_system, run_scanner

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A sparse file this big takes a worker about half a minute to hash (SHA-1 at ~1.6 GB/s):
# busy far longer than the bounded waits below.
BUSY_BYTES = 48 << 30


@dataclass
class Busy:
    service: subprocess.Popen[bytes]
    workers: list[psutil.Process]


def _reading(worker: psutil.Process, path: Path) -> bool:
    try:
        return any(f.path == str(path) for f in worker.open_files())
    except psutil.NoSuchProcess:
        return False


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
async def busy(infra: Infra, tmp_path: Path) -> AsyncIterator[Busy]:
    """A metadata service process with two workers, one of them reading a huge file (its
    children: the workers and multiprocessing's resource tracker)."""
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        media = tmp_path / "media"
        media.mkdir()
        big = media / "big.jpg"
        shutil.copy(SAMPLES / "jpg" / "Canon_40D.jpg", big)
        os.truncate(big, BUSY_BYTES)
        admin = await sign_up_admin(system)
        owner, _ = await create_user(system, admin, "owner@example.com", str(media))
        lib = (await external_library(system, admin, owner["id"], [str(media)]))["id"]
        env = {**os.environ, **env_for(system.settings), "SHOEBOX_METADATA_WORKERS": "2"}
        service = subprocess.Popen([sys.executable, "-m", "services.metadata"], env=env)
        workers: list[psutil.Process] = []
        try:
            r = await system.client.post(f"/api/libraries/{lib}/scan", headers=admin)
            assert r.status_code == 204

            async def reading() -> bool:
                nonlocal workers
                workers = psutil.Process(service.pid).children(recursive=True)
                return any(_reading(w, big) for w in workers)

            await eventually(reading, 60, "a metadata worker to be reading the big file")
            yield Busy(service, workers)
        finally:  # whatever a failed test left running
            for w in workers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    w.kill()
            service.kill()
            service.wait(10)


async def test_no_worker_survives_when_the_service_is_killed(busy: Busy) -> None:
    busy.service.send_signal(signal.SIGKILL)
    busy.service.wait(10)

    async def all_gone() -> bool:
        return all(_gone(w) for w in busy.workers)

    await eventually(all_gone, 10, "every worker of the killed service to be gone")


async def test_service_and_workers_exit_when_stopped_with_a_worker_busy(busy: Busy) -> None:
    busy.service.send_signal(signal.SIGTERM)

    async def all_gone() -> bool:
        return busy.service.poll() is not None and all(_gone(w) for w in busy.workers)

    await eventually(all_gone, 15, "the stopped service and its workers to exit")
