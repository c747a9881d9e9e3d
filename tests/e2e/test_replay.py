"""Replay rebuilds the read models exactly; a projector killed mid-batch loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from services.cli import replay
from shared import events as ev
from shared.bus import EventBus
from tests.dbcompare import diff, dump
from tests.factories import jpeg_bytes
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import Infra, System, create_database, env_for, eventually, open_system

pytestmark = pytest.mark.e2e


async def _checkpoint(system: System) -> int:
    async with system.ctx.engine.connect() as conn:
        return int(
            (
                await conn.execute(text("SELECT coalesce(max(seq), 0) FROM projection_checkpoint"))
            ).scalar()
            or 0
        )


async def test_replay_rebuilds_read_models_row_for_row(system: System, media_root: Path) -> None:
    admin = await sign_up_admin(system)
    user, headers = await create_user(system, admin, "ann@example.com", str(media_root))
    await create_user(system, admin, "ben@example.com")
    (media_root / "photos").mkdir()
    lib = await ok(
        await system.client.post(
            "/api/libraries",
            headers=admin,
            json={
                "ownerId": user["id"],
                "name": "NAS",
                "importPaths": [str(media_root / "photos")],
            },
        ),
        201,
    )
    await ok(
        await system.client.put(
            f"/api/libraries/{lib['id']}",
            headers=admin,
            json={"name": "NAS 2", "exclusionPatterns": ["**/*.tif"]},
        )
    )
    await ok(
        await system.client.post(
            "/api/api-keys", headers=headers, json={"name": "k", "permissions": ["all"]}
        ),
        201,
    )
    await ok(await system.client.post("/api/auth/logout", headers=headers))
    # Uploads edited, trashed, restored and removed by emptying the trash.
    kept, gone = [await _upload(system, admin, jpeg_bytes((8 + i, 8), (i, 2, 3))) for i in (1, 2)]
    await ok(
        await system.client.put(
            "/api/assets",
            headers=admin,
            json={"ids": [kept, gone], "isFavorite": True, "rating": 3, "isArchived": True},
        ),
        204,
    )
    await ok(
        await system.client.put(
            f"/api/assets/{kept}", headers=admin, json={"description": "Kept", "isArchived": False}
        )
    )
    for ids in ([kept, gone], [gone]):
        await ok(
            await system.client.request("DELETE", "/api/assets", headers=admin, json={"ids": ids}),
            204,
        )
        if len(ids) == 2:
            body = {"ids": [kept]}
            await ok(
                await system.client.post("/api/trash/restore/assets", headers=admin, json=body)
            )
    assert (await ok(await system.client.post("/api/trash/empty", headers=admin)))["count"] == 1
    await ok(await system.client.delete(f"/api/libraries/{lib['id']}", headers=admin), 204)

    replica = await create_database(system.infra, system.settings.nats.namespace + "_replay")
    applied, _ = await replay(system.settings, replica, show_progress=False)
    assert applied == await _checkpoint(system)
    problems = diff(await dump(system.settings.db.url), await dump(replica))
    assert not problems, "\n".join(problems)


async def _upload(system: System, headers: dict[str, str], data: bytes) -> str:
    form = {"fileCreatedAt": "2024-05-06T07:08:09Z", "fileModifiedAt": "2024-05-06T07:08:09Z"}
    files = {"assetData": ("p.jpg", data, "application/octet-stream")}
    r = await system.client.post("/api/assets", headers=headers, data=form, files=files)
    return str((await ok(r, 201))["id"])


def _flood(library_id: uuid.UUID, owner: uuid.UUID, n: int) -> list[ev.BaseEvent]:
    from datetime import UTC, datetime

    now = datetime(2024, 5, 1, tzinfo=UTC)
    out: list[ev.BaseEvent] = [
        ev.LibraryCreated(stream_id=library_id, owner_id=owner, name="L", type="EXTERNAL")
    ]
    for i in range(n):
        asset = uuid.uuid4()
        out.append(
            ev.FileDiscovered(
                stream_id=asset,
                library_id=library_id,
                owner_id=owner,
                path=f"/m/{i // 100}/{i}.jpg",
                type="IMAGE",
                file_modified_at=now,
                file_size=i,
            )
        )
        if i % 3 == 0:
            out.append(
                ev.AssetOffline(
                    stream_id=asset, library_id=library_id, reason=ev.OfflineReason.DELETED
                )
            )
    return out


@pytest.mark.slow
async def test_projector_killed_mid_batch_recovers_exactly(infra: Infra, tmp_path: Path) -> None:
    async with open_system(infra, tmp_path, projector=False) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        last, _ = await bus.publish_many(_flood(uuid.uuid4(), uuid.uuid4(), 30_000))
        env = {**os.environ, **env_for(system.settings)}
        cmd = [sys.executable, "-m", "services.projector"]
        proc = subprocess.Popen(cmd, env=env)
        try:
            await eventually(lambda: _between(system, 1, last), 60, "projector to start applying")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            killed_at = await _checkpoint(system)
            assert 0 < killed_at < last, "the kill must land mid-stream"
            proc = subprocess.Popen(cmd, env=env)
            await eventually(lambda: _between(system, last, last), 120, "projector to catch up")
        finally:
            proc.kill()
            proc.wait(10)
        replica = await create_database(infra, system.settings.nats.namespace + "_clean")
        await replay(system.settings, replica, show_progress=False)
        problems = diff(await dump(system.settings.db.url), await dump(replica))
        assert not problems, "\n".join(problems)


async def _between(system: System, low: int, high: int) -> bool:
    seq = await _checkpoint(system)
    return low <= seq <= high and seq > 0
