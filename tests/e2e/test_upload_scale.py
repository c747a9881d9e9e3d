"""Uploads at scale: the real `immich` CLI sends 1,000 photos and every one gets thumbnails;
uploads, a deletion and a re-upload replay into the same read models.

The CLI runs as in `test_immich_clients.py` (its fixtures and helpers are imported from there),
against uvicorn in this test's event loop, with the projector and the metadata service
(two worker processes) beside it.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js.errors import NotFoundError
from PIL import Image
from sqlalchemy import text

from services.cli import replay
from services.metadata.thumbs import THUMBNAIL_SIZE
from shared.bus import EventBus
from tests.dbcompare import diff, dump
from tests.e2e import test_immich_clients as clients
from tests.e2e.test_immich_clients import ImmichCli, running
from tests.helpers import ok, sign_up_admin
from tests.system import Infra, System, create_database, eventually, open_system, run_metadata

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

immich_clients = clients.immich_clients  # the session fixture that installs the pinned CLI

PHOTOS = 1000
SAMPLE = 20
SIZE = (64, 48)


def noisy_jpeg(rng: random.Random) -> bytes:
    """A small JPEG: a random colour under random noise, so every file's bytes differ."""
    base = Image.new("RGB", SIZE, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.frombytes("RGB", SIZE, rng.randbytes(SIZE[0] * SIZE[1] * 3))
    buf = io.BytesIO()
    Image.blend(base, noise, 0.3).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def write_photos(root: Path, count: int, seed: int = 1) -> list[Path]:
    """`count` distinct JPEGs in folders of 100."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = root / f"roll-{i // 100:02d}" / f"IMG_{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(noisy_jpeg(rng))
        paths.append(path)
    return paths


async def _scalar(system: System, sql: str) -> Any:
    async with system.ctx.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


class TestCliUploadAtScale:
    async def test_cli_uploads_a_thousand_photos_and_every_one_gets_thumbnails(
        self, infra: Infra, tmp_path: Path, immich_clients: Path
    ) -> None:
        folder = tmp_path / "camera"
        files = write_photos(folder, PHOTOS)
        assert len({p.read_bytes() for p in files}) == PHOTOS
        cli = ImmichCli(immich_clients, tmp_path / "home")
        async with running(infra, tmp_path) as (system, url, secret, key):
            await system.start("metadata", run_metadata)
            await cli("login", url, secret)
            out = await cli(
                "upload", "--recursive", "--no-progress", "--concurrency", "4", str(folder)
            )
            assert f"Found {PHOTOS} new files and 0 duplicates" in out, out
            assert f"Successfully uploaded {PHOTOS} new assets" in out, out
            stats = await ok(await system.client.get("/api/assets/statistics", headers=key))
            assert stats == {"images": PHOTOS, "videos": 0, "total": PHOTOS}

            async def all_thumbnailed() -> bool:
                failed = await _scalar(
                    system, "SELECT count(*) FROM assets WHERE metadata_status = 'failed'"
                )
                assert failed == 0, f"{failed} assets failed metadata extraction"
                done = await _scalar(
                    system, "SELECT count(*) FROM assets WHERE thumbnail_key IS NOT NULL"
                )
                return bool(done == PHOTOS)

            await eventually(all_thumbnailed, 300, f"thumbnails of all {PHOTOS} assets")

            async with system.ctx.engine.connect() as conn:
                ids = [
                    str(r.id)
                    for r in (await conn.execute(text("SELECT id FROM assets ORDER BY id"))).all()
                ]
            sample = random.Random(2).sample(ids, SAMPLE)
            async with httpx.AsyncClient(base_url=url, headers=key, timeout=30) as http:
                for asset_id in sample:
                    r = await http.get(f"/assets/{asset_id}/thumbnail")
                    assert r.status_code == 200, f"{asset_id}: {r.status_code} {r.text}"
                    assert r.headers["content-type"] in ("image/webp", "image/jpeg")
                    with Image.open(io.BytesIO(r.content)) as image:
                        image.load()  # decodes every pixel: a truncated image fails here
                        assert image.format in ("WEBP", "JPEG"), image.format
                        assert min(image.size) <= THUMBNAIL_SIZE, image.size
                        assert image.size == SIZE  # small originals are never enlarged


async def _upload(system: System, headers: dict[str, str], data: bytes, name: str) -> Any:
    """POST /api/assets as Immich's clients do; returns the response."""
    form = {
        "deviceAssetId": f"{name}-{len(data)}",
        "deviceId": "pytest",
        "fileCreatedAt": "2024-05-06T07:08:09.000Z",
        "fileModifiedAt": "2024-05-06T07:08:09.000Z",
    }
    return await system.client.post(
        "/api/assets", data=form, headers=headers, files={"assetData": (name, data, "image/jpeg")}
    )


async def _quiet(system: System) -> bool:
    """The metadata service has handled every asset event and the projector applied all."""
    js = system.ctx.nc.jetstream()
    nats = system.settings.nats
    try:
        info = await js.consumer_info(nats.name("EVENTS"), nats.name("metadata"))
    except NotFoundError:
        return False  # the metadata service has not created its consumer yet
    if info.num_pending or info.num_ack_pending:
        return False
    last = await EventBus(system.ctx.nc, nats).last_seq()
    checkpoint = await _scalar(system, "SELECT coalesce(max(seq), 0) FROM projection_checkpoint")
    return bool(checkpoint == last)


class TestUploadReplay:
    async def test_replay_after_uploads_a_deletion_and_reuploads_gives_the_same_assets(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        rng = random.Random(3)
        photos = [noisy_jpeg(rng) for _ in range(30)]
        async with open_system(infra, tmp_path) as system:
            await system.start("metadata", run_metadata)
            admin = await sign_up_admin(system)
            ids = []
            for i, data in enumerate(photos):
                body = await ok(await _upload(system, admin, data, f"IMG_{i:02d}.jpg"), 201)
                assert body["status"] == "created"
                ids.append(body["id"])
            await ok(
                await system.client.request(
                    "DELETE", "/api/assets", headers=admin, json={"ids": [ids[0]], "force": True}
                ),
                204,
            )
            # The same bytes as a live asset: a duplicate of it, nothing recorded.
            again = await ok(await _upload(system, admin, photos[1], "copy.jpg"), 200)
            assert again == {"id": ids[1], "status": "duplicate"}
            # The deleted asset's bytes: it starts a new life under the same id.
            revived = await ok(await _upload(system, admin, photos[0], "back.jpg"), 201)
            assert revived == {"id": ids[0], "status": "created"}

            await eventually(
                lambda: _quiet(system), 60, "metadata of every upload to be extracted and projected"
            )
            assert await _scalar(system, "SELECT count(*) FROM assets") == 30
            assert (
                await _scalar(
                    system,
                    "SELECT count(*) FROM assets WHERE metadata_status = 'done' "
                    "AND thumbnail_key IS NOT NULL",
                )
                == 30
            )
            assert (
                await _scalar(
                    system, f"SELECT original_file_name FROM assets WHERE id = '{ids[0]}'"
                )
                == "back.jpg"
            )

            replica = await create_database(infra, system.settings.nats.namespace + "_replay")
            await replay(system.settings, replica, show_progress=False)
            problems = diff(await dump(system.settings.db.url), await dump(replica))
            assert not problems, "\n".join(problems)
