"""Fixtures of the scanner tests: a system with a scanner, an admin and a user with media."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.bus import EventBus
from tests.helpers import (
    assets_of,
    create_user,
    external_library,
    media_system,
    scan,
    sign_up_admin,
)
from tests.system import Infra, System, open_system, run_scanner


class World:
    """A system with a scanner, an admin, and a user whose external path is `media`."""

    def __init__(
        self, system: System, media: Path, admin: dict[str, str], user: dict[str, Any]
    ) -> None:
        self.system, self.media, self.admin, self.user = system, media, admin, user

    async def library(self, *paths: Path, **extra: Any) -> str:
        lib = await external_library(
            self.system, self.admin, self.user["id"], [str(p) for p in paths], **extra
        )
        return str(lib["id"])

    async def scan(self, library_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await scan(self.system, self.admin, library_id, body)

    async def assets(self, library_id: str, **filters: Any) -> dict[str, dict[str, Any]]:
        return {
            a["originalPath"]: a
            for a in await assets_of(self.system, self.admin, library_id, **filters)
        }

    async def last_seq(self) -> int:
        return await EventBus(self.system.ctx.nc, self.system.settings.nats).last_seq()


@pytest.fixture
async def world(infra: Infra, tmp_path: Path) -> AsyncIterator[World]:
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        media = tmp_path / "media"
        media.mkdir()
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "owner@example.com", str(media))
        yield World(system, media, admin, user)


@pytest.fixture
async def metadata_env(
    infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[System, dict[str, str], str, Path]]:
    """A system with a scanner and the metadata service: (system, admin headers, the owner's
    id, the owner's external path)."""
    async with media_system(infra, tmp_path) as m:
        yield m.system, m.admin, m.owner["id"], m.root
