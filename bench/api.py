"""API benchmark: read latency over a 100,000-asset library, and upload throughput.

Run: `.venv/bin/python bench/api.py [--assets 100000] [--requests 50] [--uploads 20] [--mb 20]`.

The library is built fast: an admin signs up through the API, then synthetic FileDiscovered +
MetadataExtracted events for an external library of theirs (dates over ten years with holiday
bursts, GPS on about half) are published straight to the bus and projected with
`Projector.run(until_seq=last)`. The API is then served by uvicorn on a real TCP port in this
process, and each endpoint is timed over sequential keep-alive requests, next to two floors
measured in the same run: `GET /api/server/ping` (HTTP + framework, no database) and the
endpoint's SQL run directly with asyncpg. Uploads (`POST /api/assets`, read-your-writes
included) are compared with `shutil.copyfile` of the same files. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx

from bench.common import infra
from services.projector.app import Projector
from shared import events as ev
from shared.bus import EventBus
from shared.db import sqlalchemy_url
from shared.metadata import AssetMetadata
from tests.e2e.test_immich_clients import http_api
from tests.helpers import ok, sign_up_admin
from tests.system import open_system, run_projector

START = datetime(2015, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3653)
PLACES = [
    (48.137, 11.575),
    (52.52, 13.405),
    (41.902, 12.496),
    (40.713, -74.006),
    (35.676, 139.65),
    (-33.869, 151.209),
    (64.146, -21.94),
    (38.722, -9.139),
]


def capture_times(n: int, rng: random.Random) -> list[datetime]:
    """70% spread evenly over ten years, 30% in a dozen one-to-two-week holidays."""
    holidays = [
        (START + SPAN * rng.random(), timedelta(days=rng.randint(7, 14))) for _ in range(12)
    ]
    out = []
    for _ in range(n):
        if rng.random() < 0.7:
            out.append(START + SPAN * rng.random())
        else:
            begin, length = rng.choice(holidays)
            out.append(begin + length * rng.random())
    return [t.replace(microsecond=0) for t in out]


def library_events(
    owner: uuid.UUID, library: uuid.UUID, n: int, rng: random.Random
) -> tuple[list[ev.BaseEvent], list[uuid.UUID]]:
    """An external library of `n` photos, each discovered and then read."""
    out: list[ev.BaseEvent] = [
        ev.LibraryCreated(
            stream_id=library,
            owner_id=owner,
            name="bench",
            type="EXTERNAL",
            import_paths=["/bench/photos"],
        )
    ]
    ids = []
    for i, when in enumerate(capture_times(n, rng)):
        asset = uuid.uuid4()
        ids.append(asset)
        path = f"/bench/photos/{when:%Y/%m}/IMG_{i:07d}.jpg"
        size = 1_500_000 + rng.randrange(3_000_000)
        out.append(
            ev.FileDiscovered(
                stream_id=asset,
                library_id=library,
                owner_id=owner,
                path=path,
                type="IMAGE",
                file_modified_at=when,
                file_size=size,
            )
        )
        lat = lon = None
        if rng.random() < 0.5:
            base_lat, base_lon = rng.choice(PLACES)
            lat, lon = base_lat + rng.uniform(-0.5, 0.5), base_lon + rng.uniform(-0.5, 0.5)
        portrait = rng.random() < 0.2
        out.append(
            ev.MetadataExtracted(
                stream_id=asset,
                metadata=AssetMetadata(
                    checksum=f"{i:040x}",
                    file_size=size,
                    file_modified_at=when,
                    width=3000 if portrait else 4000,
                    height=4000 if portrait else 3000,
                    orientation=1,
                    date_time_original=when,
                    local_date_time=when,
                    latitude=lat,
                    longitude=lon,
                    make="Canon",
                    model="EOS R6",
                    iso=rng.choice([100, 200, 400, 800, 1600]),
                    exposure_time="1/250",
                    f_number=2.8,
                    focal_length=35.0,
                    mime_type="image/jpeg",
                ),
                thumbnail_key=f"{asset}/thumbnail.jpeg",
                preview_key=f"{asset}/preview.jpeg",
            )
        )
    return out, ids


def summary(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in ms."""
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


async def timed(call: Callable[[], Awaitable[object]], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        await call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


def line(
    name: str, samples: list[float], floor: list[float] | None = None, size: int | None = None
) -> str:
    med, p95 = summary(samples)
    text = f"{name:<36} median {med:8.2f} ms   p95 {p95:8.2f} ms"
    if floor is not None:
        fmed, fp95 = summary(floor)
        text += f"   | SQL alone {fmed:7.2f} / {fp95:7.2f} ms"
    if size is not None:
        text += f"   | {size / 1e3:9,.1f} kB"
    return text


async def read_latency(
    url: str,
    headers: dict[str, str],
    pg: asyncpg.Connection,
    owner: uuid.UUID,
    ids: list[uuid.UUID],
    n: int,
    rng: random.Random,
) -> None:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:

        async def get(path: str, **params: str) -> httpx.Response:
            r = await http.get(path, params=params)
            r.raise_for_status()
            return r

        buckets = (await get("/timeline/buckets")).json()
        busy = max(buckets, key=lambda b: b["count"])
        start = datetime.fromisoformat(busy["timeBucket"]).replace(tzinfo=UTC)
        end = (start + timedelta(days=32)).replace(day=1)
        markers = await get("/map/markers")
        print(
            f"library: {sum(b['count'] for b in buckets):,} assets in {len(buckets)} months; "
            f"busiest {busy['timeBucket'][:7]} with {busy['count']:,}; "
            f"{len(markers.json()):,} map markers"
        )
        print(f"{n} sequential requests each (after 3 warm-up), one keep-alive connection:")

        ping = await timed(lambda: get("/server/ping"), n)
        print(line("GET /server/ping (HTTP floor)", ping))

        sql = await timed(
            lambda: pg.fetch(
                "SELECT date_trunc('month', local_date_time AT TIME ZONE 'UTC') AS m, count(*) "
                "FROM assets WHERE owner_id = $1 GROUP BY 1 ORDER BY 1 DESC",
                owner,
            ),
            n,
        )
        r = await get("/timeline/buckets")
        api = await timed(lambda: get("/timeline/buckets"), n)
        print(line("GET /timeline/buckets", api, sql, len(r.content)))

        month = busy["timeBucket"]
        sql = await timed(
            lambda: pg.fetch(
                "SELECT id, owner_id, type, width, height, orientation, is_favorite, is_offline, "
                "file_created_at, local_date_time, created_at, duration_seconds, latitude, "
                "longitude FROM assets WHERE owner_id = $1 AND local_date_time >= $2 AND "
                "local_date_time < $3 ORDER BY local_date_time DESC, id DESC",
                owner,
                start,
                end,
            ),
            n,
        )
        r = await get("/timeline/bucket", timeBucket=month)
        api = await timed(lambda: get("/timeline/bucket", timeBucket=month), n)
        print(line(f"GET /timeline/bucket ({busy['count']:,} assets)", api, sql, len(r.content)))

        sql = await timed(
            lambda: pg.fetch(
                "SELECT id, latitude, longitude FROM assets WHERE owner_id = $1 "
                "AND latitude IS NOT "
                "NULL AND longitude IS NOT NULL ORDER BY file_created_at DESC, id",
                owner,
            ),
            n,
        )
        api = await timed(lambda: get("/map/markers"), n)
        print(line("GET /map/markers", api, sql, len(markers.content)))

        picks = [rng.choice(ids) for _ in range(n + 3)]
        it = iter(picks)
        sql = await timed(lambda: pg.fetchrow("SELECT * FROM assets WHERE id = $1", next(it)), n)
        it = iter(picks)
        r = await get(f"/assets/{picks[0]}")
        api = await timed(lambda: get(f"/assets/{next(it)}"), n)
        print(line("GET /assets/{id} (random ids)", api, sql, len(r.content)))


async def upload_throughput(
    url: str, headers: dict[str, str], work: Path, count: int, mb: int
) -> None:
    source, copies = work / "source", work / "copies"
    source.mkdir()
    copies.mkdir()
    files = []
    for i in range(count):
        path = source / f"VID_{i:03d}.mp4"
        path.write_bytes(os.urandom(mb << 20))  # distinct bytes, so no upload is a duplicate
        files.append(path)
    total = sum(p.stat().st_size for p in files)

    t = time.perf_counter()
    for path in files:
        shutil.copyfile(path, copies / path.name)
    copy_s = time.perf_counter() - t

    form = {
        "deviceId": "bench",
        "fileCreatedAt": "2024-05-06T07:08:09Z",
        "fileModifiedAt": "2024-05-06T07:08:09Z",
    }
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        t = time.perf_counter()
        for path in files:
            with path.open("rb") as fh:
                r = await http.post(
                    "/assets",
                    data={**form, "deviceAssetId": path.name},
                    files={"assetData": (path.name, fh, "video/mp4")},
                )
            assert r.status_code == 201, r.text  # a failed upload would make the figure a lie
        upload_s = time.perf_counter() - t
    print(f"uploads: {count} files of {mb} MB ({total / 1e6:,.0f} MB), sequential")
    print(f"  shutil.copyfile (floor)       {total / 1e6 / copy_s:8.1f} MB/s  ({copy_s:6.2f} s)")
    print(
        f"  POST /api/assets              {total / 1e6 / upload_s:8.1f} MB/s  "
        f"({upload_s:6.2f} s, {upload_s / count * 1000:.0f} ms per file)"
    )
    print(f"  ratio copy/upload (time for the same bytes): {upload_s / copy_s:.1f}x")


async def main(n_assets: int, n_requests: int, uploads: int, mb: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(7)
    with infra() as inf, tempfile.TemporaryDirectory(prefix="sbapi-", dir="/tmp") as tmp:
        async with open_system(inf, Path(tmp)) as system:
            headers = await sign_up_admin(system)
            me = await ok(await system.client.get("/api/users/me", headers=headers))
            owner = uuid.UUID(me["id"])

            # Build the library with the live projector stopped, then project it in one go.
            await system.stop("projector")
            events, ids = library_events(owner, uuid.uuid4(), n_assets, rng)
            t = time.perf_counter()
            last, _ = await EventBus(system.ctx.nc, system.settings.nats).publish_many(events)
            publish_s = time.perf_counter() - t
            t = time.perf_counter()
            await Projector(system.ctx.nc, system.ctx.engine, system.settings.nats).run(
                until_seq=last
            )
            project_s = time.perf_counter() - t
            del events
            print(
                f"built: {len(ids) * 2 + 1:,} events published in {publish_s:.1f} s, "
                f"projected in {project_s:.1f} s ({(len(ids) * 2 + 1) / project_s:,.0f} "
                f"events/s)"
            )
            await system.start("projector", run_projector)  # uploads wait for their events

            pg = await asyncpg.connect(
                sqlalchemy_url(system.settings.db.url).replace(
                    "postgresql+asyncpg://", "postgresql://"
                )
            )
            try:
                # Autovacuum would analyze after this many inserts soon; do it now, once.
                await pg.execute("ANALYZE assets")
                async with http_api(system) as url:
                    # Building the Litestar app sets the root logger to INFO (its default
                    # logging config); an INFO line per request would be timed too.
                    logging.getLogger().setLevel(logging.WARNING)
                    await read_latency(url, headers, pg, owner, ids, n_requests, rng)
                    await upload_throughput(url, headers, Path(tmp), uploads, mb)
            finally:
                await pg.close()
    print(f"({os.cpu_count()} cores; client, API, projector and PostgreSQL on one machine)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--mb", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.assets, args.requests, args.uploads, args.mb))
