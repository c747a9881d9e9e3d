"""Replay benchmark: the events of 100k assets projected, vs raw inserts of the same rows.

The events are what Shoebox records for a scanned library: one FilesDiscovered per folder of
200 files (decision 0030), then one MetadataExtracted per asset.

Run: `.venv/bin/python bench/replay.py [--assets 100000]`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import psutil

from bench.common import CpuTally, infra
from services.cli import replay
from shared import events as ev
from shared.bus import EventBus, connect, ensure_streams
from shared.ids import folder_id
from shared.metadata import AssetMetadata
from tests.system import create_database, system_settings

PER_DIR = 200


def make_events(n: int) -> list[ev.BaseEvent]:
    """A realistic mix: a library, its folders' births, then per asset a MetadataExtracted."""
    owner, library = uuid.uuid4(), uuid.uuid4()
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    out: list[ev.BaseEvent] = [
        ev.LibraryCreated(
            stream_id=library, owner_id=owner, name="bench", type="EXTERNAL", import_paths=["/m"]
        )
    ]
    for start in range(0, n, PER_DIR):
        folder = f"/m/{start // PER_DIR:05d}"
        files = [
            ev.FolderFile(
                f"IMG_{i:07d}.jpg",
                "IMAGE",
                int((t0 + timedelta(minutes=i)).timestamp() * 1000),
                2_000_000 + i,
            )
            for i in range(start, min(n, start + PER_DIR))
        ]
        out.append(
            ev.FilesDiscovered(
                stream_id=folder_id(library, folder),
                library_id=library,
                owner_id=owner,
                folder=folder,
                files=files,
            )
        )
    births = [d for e in out if isinstance(e, ev.FilesDiscovered) for d in e.discoveries()]
    for i, born in enumerate(births):
        asset = born.stream_id
        when = t0 + timedelta(minutes=i)
        out.append(
            ev.MetadataExtracted(
                stream_id=asset,
                metadata=AssetMetadata(
                    checksum=f"{i:040x}",
                    file_size=2_000_000 + i,
                    file_modified_at=when,
                    width=4000,
                    height=3000,
                    orientation=1,
                    date_time_original=when,
                    local_date_time=when,
                    latitude=48.1,
                    longitude=11.5,
                    make="Canon",
                    model="EOS",
                    iso=100,
                    exposure_time="1/250",
                    f_number=2.8,
                    focal_length=35.0,
                    mime_type="image/jpeg",
                ),
                thumbnail_key=f"{asset}/thumbnail.jpeg",
                preview_key=f"{asset}/preview.jpeg",
            )
        )
    return out


async def raw_insert(url: str, events: list[ev.BaseEvent]) -> tuple[int, float]:
    """The floor: the final asset rows written with asyncpg's executemany, one transaction."""
    conn = await asyncpg.connect(url)
    discovered = {
        d.stream_id: d for e in events if isinstance(e, ev.FilesDiscovered) for d in e.discoveries()
    }
    rows = []
    for e in events:
        if isinstance(e, ev.MetadataExtracted):
            d, m = discovered[e.stream_id], e.metadata
            rows.append(
                (
                    e.stream_id,
                    d.owner_id,
                    d.library_id,
                    "IMAGE",
                    d.path,
                    d.path.rsplit("/", 1)[1],
                    d.path.rsplit("/", 1)[0],
                    m.checksum,
                    m.file_size,
                    d.file_modified_at,
                    m.date_time_original,
                    m.local_date_time,
                    m.width,
                    m.height,
                    m.latitude,
                    m.longitude,
                    m.make,
                    m.model,
                    e.occurred_at,
                )
            )
    await conn.execute(
        "CREATE TABLE raw_assets (id uuid primary key, owner_id uuid, library_id uuid, "
        'type text, original_path text, original_file_name text, dir text collate "C", '
        "checksum text, file_size bigint, file_modified_at timestamptz, "
        "file_created_at timestamptz, local_date_time timestamptz, width int, height int, "
        "latitude float8, longitude float8, make text, model text, created_at timestamptz)"
    )
    await conn.execute("CREATE INDEX ON raw_assets (library_id, dir)")
    started = time.perf_counter()
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO raw_assets VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,"
            "$16,$17,$18,$19)",
            rows,
        )
    elapsed = time.perf_counter() - started
    await conn.close()
    return len(rows), elapsed


async def main(n: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    with infra() as inf:
        settings = system_settings(
            inf, "bench", await create_database(inf, "bench"), inf.root / "data"
        )
        nc = await connect(settings.nats, "bench")
        await ensure_streams(nc, settings.nats)
        events = make_events(n)
        started = time.perf_counter()
        await EventBus(nc, settings.nats).publish_many(events)
        publish_s = time.perf_counter() - started
        tally = CpuTally({"projector (this process)": [os.getpid()]})
        tally.start()
        applied, replay_s = await replay(settings, settings.db.url, show_progress=False)
        tally.stop()
        sizes = await store_sizes(nc, settings, inf.root)
        await nc.drain()
        raw_url = (await create_database(inf, "raw")).replace("postgresql+asyncpg", "postgresql")
        rows, raw_s = await raw_insert(raw_url, events)
    print(
        f"events published:        {len(events):>9,}  in {publish_s:6.2f} s "
        f"({len(events) / publish_s:,.0f} events/s)"
    )
    print(
        f"replay (projector):      {applied:>9,}  in {replay_s:6.2f} s "
        f"({applied / replay_s:,.0f} events/s, {rows / replay_s:,.0f} asset rows/s)"
    )
    print(
        f"raw PostgreSQL insert:   {rows:>9,} rows in {raw_s:6.2f} s ({rows / raw_s:,.0f} rows/s)"
    )
    print(f"CPU during the replay: {tally.line(replay_s)}")
    print(f"ratio replay/raw (time for the same {rows:,} rows): {replay_s / raw_s:.2f}x")
    # Sizes per asset, for docs/scaling.md (each asset here = its share of a FilesDiscovered and
    # a MetadataExtracted).
    for name, value in sizes.items():
        print(f"{name:<34} {value / 1e6:10.1f} MB = {value / rows:8.0f} bytes per asset")


async def store_sizes(nc: Any, settings: Any, root: Path) -> dict[str, int]:
    """The EVENTS stream's bytes, the JetStream store on disk, nats-server's RSS, and the
    read models' assets table with and without its indexes."""
    info = await nc.jetstream().stream_info(settings.nats.name("EVENTS"))
    disk = sum(f.stat().st_size for f in (root / "nats").rglob("*") if f.is_file())
    rss = 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        if "nats-server" in (proc.info["name"] or "") and str(root) in " ".join(
            proc.info["cmdline"] or []
        ):
            rss = proc.memory_info().rss
    conn = await asyncpg.connect(settings.db.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        table = await conn.fetchval("SELECT pg_table_size('assets')")
        indexes = await conn.fetchval("SELECT pg_indexes_size('assets')")
        database = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return {
        "EVENTS stream (JetStream bytes)": int(info.state.bytes),
        "JetStream store on disk": disk,
        "nats-server RSS": rss,
        "assets table (heap + toast)": int(table),
        "assets indexes": int(indexes),
        "read-model database": int(database),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().assets))
