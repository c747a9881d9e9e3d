"""Session fixtures: a real nats-server and a real PostgreSQL, and isolated Shoebox systems."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.infra import free_port, start_nats, start_postgres
from tests.system import Infra, System, open_system


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """One nats-server and one PostgreSQL for the whole run (each test gets its own namespace
    and database on them)."""
    # Short absolute paths: PostgreSQL's socket lives in its data dir (limit ~100 chars).
    root = Path(tempfile.mkdtemp(prefix="sbt-", dir="/tmp"))
    port = free_port()
    nats = start_nats(root / "nats", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server, uri = start_postgres(root / "pg", cleanup_mode="stop")
    try:
        yield Infra(nats_url=f"nats://127.0.0.1:{port}", pg_uri=uri, root=root)
    finally:
        nats.terminate()
        nats.wait(10)
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def system(infra: Infra, tmp_path: Path) -> AsyncIterator[System]:
    """A fresh Shoebox (own streams, own database) with the API and the projector running."""
    async with open_system(infra, tmp_path) as sys_:
        yield sys_


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    """A folder an admin can grant as an external path."""
    root = tmp_path / "media"
    root.mkdir()
    return root


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("SHOEBOX_LOG_LEVEL", "WARNING")
