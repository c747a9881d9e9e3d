"""Scanner replicas as real processes: two share a scan; one killed mid-scan loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.factories import jpeg_bytes
from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import Infra, System, env_for, eventually, open_system

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FILES, DIRS = 5000, 100


def _make_library(root: Path) -> None:
    data = jpeg_bytes((8, 8))
    for d in range(DIRS):
        folder = root / f"album-{d:03d}" / ("nested" if d % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(FILES // DIRS):
            (folder / f"img-{f:03d}.jpg").write_bytes(data)


def _spawn_scanner(system: System) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **env_for(system.settings),
        "SHOEBOX_SCAN_ACK_WAIT": "3",
        "SHOEBOX_LIBRARY_SCAN_ENABLED": "false",
    }
    return subprocess.Popen([sys.executable, "-m", "services.scanner"], env=env)


async def _stats(system: System, admin: dict[str, str], lib: str) -> dict[str, Any]:
    return await ok(
        await system.client.get(
            f"/api/libraries/{lib}/statistics",  # type: ignore[no-any-return]
            headers=admin,
        )
    )


async def _status(system: System, admin: dict[str, str], lib: str) -> dict[str, Any]:
    return await ok(await system.client.get(f"/api/libraries/{lib}/scan", headers=admin))  # type: ignore[no-any-return]


async def _setup(system: System, tmp_path: Path) -> tuple[dict[str, str], str]:
    media = tmp_path / "media"
    _make_library(media)
    admin = await sign_up_admin(system)
    user, _ = await create_user(system, admin, "owner@example.com", str(media))
    lib = await external_library(system, admin, user["id"], [str(media)])
    return admin, lib["id"]


async def test_two_scanner_processes_make_exactly_one_asset_per_file(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path) as system:
        admin, lib = await _setup(system, tmp_path)
        scanners = [_spawn_scanner(system), _spawn_scanner(system)]
        try:
            r = await system.client.post(f"/api/libraries/{lib}/scan", headers=admin)
            assert r.status_code == 204

            async def finished() -> bool:
                return (await _status(system, admin, lib))["state"] == "finished"

            await eventually(finished, 120, "the scan to finish")
            assert (await _stats(system, admin, lib))["total"] == FILES
            # Both at once again: still exactly one asset per file, nothing new.
            for _ in range(2):
                r = await system.client.post(f"/api/libraries/{lib}/scan", headers=admin)
            await eventually(finished, 120, "the rescans to finish")
            status = await _status(system, admin, lib)
            assert status["new"] == 0 and status["filesSeen"] == FILES
            assert (await _stats(system, admin, lib))["total"] == FILES
        finally:
            for p in scanners:
                p.kill()
                p.wait(10)


async def test_scanner_killed_mid_scan_then_restarted_finishes_exactly(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path) as system:
        admin, lib = await _setup(system, tmp_path)
        scanner = _spawn_scanner(system)
        try:
            r = await system.client.post(f"/api/libraries/{lib}/scan", headers=admin)
            assert r.status_code == 204

            async def midway() -> bool:
                return (await _stats(system, admin, lib))["total"] > 0

            await eventually(midway, 60, "the scan to be under way")
            scanner.send_signal(signal.SIGKILL)
            scanner.wait(10)
            killed_at = (await _stats(system, admin, lib))["total"]
            scanner = _spawn_scanner(system)

            async def finished() -> bool:
                return (await _status(system, admin, lib))["state"] == "finished"

            await eventually(finished, 120, "the restarted scanner to finish the scan")
            assert (await _stats(system, admin, lib))["total"] == FILES
            assert killed_at < FILES, "the kill should land before the scan completes"
        finally:
            scanner.kill()
            scanner.wait(10)
