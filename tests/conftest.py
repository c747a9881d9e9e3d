"""Session fixtures: a real nats-server and a real PostgreSQL, and isolated Shoebox systems."""

from __future__ import annotations

import os
from collections import Counter
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with the most slow, e2e or container tests first, each kept whole: under
    `make test` (pytest -n 2 --dist loadfile) the long ones start at once on both workers and
    the quick ones fill in behind, rather than one long module ending the run alone."""
    heavy = Counter(
        item.path
        for item in items
        if any(item.get_closest_marker(m) for m in ("slow", "e2e", "container"))
    )
    items.sort(key=lambda item: -heavy[item.path])  # stable: modules stay whole, in order


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("SHOEBOX_LOG_LEVEL", "WARNING")
