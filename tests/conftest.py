"""Session fixtures: a real nats-server and a real PostgreSQL, and isolated Shoebox systems."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.system import Infra, System, embedded_infra, open_system


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """One nats-server and one PostgreSQL for the whole run (each test gets its own namespace
    and database on them)."""
    with embedded_infra() as inf:
        yield inf


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
