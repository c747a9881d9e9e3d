"""A run sent as one set-based UPDATE leaves exactly the rows its per-row executions leave."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from services.projector import send
from services.projector.app import Projector
from services.projector.failures import Failure
from services.projector.positions import SET_BASED as POSITION_FORMS
from services.projector.positions import position_ops
from services.projector.projections import SET_BASED, plan
from shared import events as ev
from shared.db import create_engine, create_schema
from shared.ids import folder_id
from shared.metadata import AssetMetadata
from tests.dbcompare import diff, dump
from tests.system import Infra, create_database, open_system

T0 = datetime(2024, 5, 1, tzinfo=UTC)
N = 12  # assets: every run below is at least SET_BASED_MIN long
RESTORED = datetime(2024, 6, 1, 12, 0)  # naive


def _full(i: int, when: datetime) -> AssetMetadata:
    return AssetMetadata(
        checksum=f"{i:040x}",
        file_size=1000 + i,
        file_modified_at=when,
        mime_type="image/jpeg",
        width=4000,
        height=3000,
        orientation=6,
        date_time_original=when,
        time_zone="UTC+2",
        local_date_time=when + timedelta(hours=2),
        latitude=48.1 + i,
        longitude=-11.5,
        make="Canon",
        model="EOS",
        lens_model="50mm",
        iso=100 * i,
        exposure_time="1/250",
        f_number=2.8,
        focal_length=35.0,
        description=f"file says {i}",
    )


def _events(library: uuid.UUID, owner: uuid.UUID) -> tuple[ev.BaseEvent, list[ev.BaseEvent]]:
    """A folder's births, then a batch mixing every per-asset update on the same assets, so
    each asset's events fall in successive plan levels."""
    births = ev.FilesDiscovered(
        stream_id=folder_id(library, "/m"),
        library_id=library,
        owner_id=owner,
        folder="/m",
        files=[ev.FolderFile(f"{i}.jpg", "IMAGE", 1714521600000 + i, i) for i in range(N)],
    )
    ids = [d.stream_id for d in births.discoveries()]
    batch: list[ev.BaseEvent] = []
    for i, a in enumerate(ids):
        # Half read in full; half with nothing but the file facts: every optional column of
        # their rows NULL, and some NULL in the whole run (an array of NULLs: duration,
        # thumbhash).
        metadata = (
            _full(i, T0)
            if i % 2
            else AssetMetadata(checksum=f"{i:040x}", file_size=1000 + i, file_modified_at=T0)
        )
        batch.append(
            ev.MetadataExtracted(
                stream_id=a,
                metadata=metadata,
                thumbnail_key=f"{a}/thumbnail.jpeg" if i % 2 else None,
                preview_key=f"{a}/preview.jpeg" if i % 2 else None,
            )
        )
    for i, a in enumerate(ids[: N // 2]):
        # A render failing after the read: no checksum or size keeps the row's (coalesce).
        checksum, size = (None, None) if i % 2 else ("f" * 40, 7)
        batch.append(
            ev.MetadataFailed(stream_id=a, reason="pixels", checksum=checksum, file_size=size)
        )
        batch.append(
            ev.FileChanged(
                stream_id=a,
                library_id=library,
                path=f"/m/{i}.jpg",
                file_modified_at=T0 + timedelta(days=1),
                file_size=5000 + i,
                sidecar_mtime_ms=i,
            )
        )
    for i, a in enumerate(ids[: N // 3]):
        batch.append(
            ev.MetadataExtracted(
                stream_id=a, metadata=_full(100 + i, T0 + timedelta(days=2)), thumbhash=bytes([i])
            )
        )
    for i, a in enumerate(ids[N // 2 :]):
        batch.append(
            ev.AssetOffline(stream_id=a, library_id=library, reason=ev.OfflineReason.DELETED)
        )
        back = i % 2 == 0  # with the file's facts again, or without (coalesce keeps the row's)
        batch.append(
            ev.AssetOnline(
                stream_id=a,
                library_id=library,
                file_modified_at=T0 + timedelta(days=3) if back else None,
                file_size=9 if back else None,
            )
        )
    for i, a in enumerate(ids):
        # A partial edit: its None fields keep what the row had (coalesce).
        batch.append(
            ev.AssetUpdated(
                stream_id=a,
                is_favorite=bool(i % 2) if i % 3 else None,
                visibility="archive" if i % 2 else None,
                rating=i % 5 if i % 4 else None,
                description="mine" if i % 3 == 0 else None,
            )
        )
    for a in ids[:6]:
        batch.append(ev.AssetTrashed(stream_id=a, library_id=library))
    for a in ids[:4]:
        # A time without an offset: asyncpg's binary parameters take it as UTC; the set form's
        # JSON text is read in the session's time zone, which shared/db.py makes UTC.
        batch.append(ev.AssetRestored(stream_id=a, library_id=library, occurred_at=RESTORED))
    return births, batch


def _subject(e: ev.BaseEvent) -> str:
    return f"events.{e.aggregate.value}.{e.stream_id}"


Batch = tuple[list[tuple[int, ev.BaseEvent]], int, list[Failure], dict[int, str]]


def _batch(events: list[ev.BaseEvent], first: int) -> Batch:
    """`events` as one batch from seq `first`, each of the first N // 2 followed by a message
    this version cannot decode on the same asset's subject (passed over, its position moved,
    then overtaken by the asset's later events): (decoded, last seq, failures, subjects)."""
    decoded: list[tuple[int, ev.BaseEvent]] = []
    failures: list[Failure] = []
    subjects: dict[int, str] = {}
    seq = first
    for k, e in enumerate(events):
        decoded.append((seq, e))
        subjects[seq] = _subject(e)
        if k < N // 2:
            seq += 1
            failures.append(Failure(seq, _subject(e), "cannot decode"))
        seq += 1
    return decoded, seq - 1, failures, subjects


async def _not_utc(url: str) -> None:
    engine = create_engine(url, pool=False)
    try:
        async with engine.connect() as conn:
            name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            await conn.execute(text(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Tokyo'"))
            await conn.commit()
    finally:
        await engine.dispose()


async def _apply_all(projector: Projector, births: ev.BaseEvent, batch: list[ev.BaseEvent]) -> None:
    await projector._commit([(1, births)], 1, [], {1: _subject(births)})
    await projector._commit(*_batch(batch, 2))


def test_the_batch_runs_every_asset_set_form() -> None:
    """The batch below would prove nothing about a form it never sends."""
    _, batch = _events(uuid.uuid4(), uuid.uuid4())
    decoded, _, failures, subjects = _batch(batch, 2)
    positioned: set[int] = set()
    ops = plan(decoded, positioned)
    moved = [(seq, subjects[seq], e) for seq, e in decoded]
    ops += position_ops([*moved, *((f.seq, f.subject, None) for f in failures)], positioned)
    runs = {stmt: len(rows) for stmt, rows in ops}
    forms = [*SET_BASED, *(s for s in POSITION_FORMS if s.text.startswith("UPDATE assets "))]
    assert all(runs.get(stmt, 0) >= send.SET_BASED_MIN for stmt in forms), runs


async def test_set_based_runs_leave_the_rows_per_row_executions_leave(
    infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library, owner = uuid.uuid4(), uuid.uuid4()
    births, batch = _events(library, owner)
    async with open_system(infra, tmp_path, projector=False) as system:
        # A server whose own time zone is not UTC (the connections made from here on).
        await _not_utc(system.settings.db.url)
        await system.ctx.engine.dispose()
        set_based = Projector(system.ctx.nc, system.ctx.engine, system.settings.nats)
        await _apply_all(set_based, births, batch)
        live = await dump(system.settings.db.url)

        # Applied twice (a batch redelivered past a lost checkpoint): nothing changes.
        await set_based._commit(*_batch(batch, 2))
        assert not diff(live, await dump(system.settings.db.url))

        url = await create_database(infra, system.settings.nats.namespace + "_rows")
        await _not_utc(url)
        engine = create_engine(url)
        try:
            await create_schema(engine)
            monkeypatch.setattr(send, "SET_BASED_MIN", 10**9)  # every run per row
            per_row = Projector(system.ctx.nc, engine, system.settings.nats)
            await _apply_all(per_row, births, batch)
        finally:
            await engine.dispose()
        problems = diff(live, await dump(url))
        assert not problems, "\n".join(problems)

        async with system.ctx.engine.connect() as conn:
            rows = {
                r.original_file_name: r for r in await conn.execute(text("SELECT * FROM assets"))
            }
    # What the rows say, so both ways cannot be wrong alike.
    bare = rows["10.jpg"]  # NULL-heavy metadata: dates from the file, optional columns NULL
    born = datetime.fromtimestamp((1714521600000 + 10) / 1000, UTC)
    assert bare.file_created_at == bare.local_date_time == born
    assert (bare.width, bare.latitude, bare.thumbhash, bare.thumbnail_key) == (None,) * 4
    assert (bare.is_offline, bare.metadata_status, bare.checksum) == (False, "done", f"{10:040x}")
    assert (bare.file_size, bare.file_modified_at) == (9, T0 + timedelta(days=3))  # back, moved
    full = rows["7.jpg"]  # read in full, offline, then online without new facts
    assert (full.file_size, full.latitude, full.iso, full.local_date_time) == (
        1007,
        55.1,
        700,
        T0 + timedelta(hours=2),
    )
    assert (full.visibility, full.is_favorite, full.rating) == ("archive", True, 2)
    assert rows["1.jpg"].updated_at == rows["0.jpg"].updated_at == RESTORED.replace(tzinfo=UTC)
    failed = rows["5.jpg"]  # failed without a checksum after a full read, then changed
    assert (failed.checksum, failed.file_size, failed.metadata_status, failed.metadata_error) == (
        f"{5:040x}",
        5005,
        "pending",
        "pixels",
    )
    assert rows["4.jpg"].deleted_at is not None and rows["3.jpg"].deleted_at is None
    assert rows["0.jpg"].user_description == "mine" and rows["0.jpg"].rating is None
    # Each asset at its subject's newest event (never set back by an older passed-over one).
    decoded, _, failures, _ = _batch(batch, 2)
    newest = {e.stream_id: seq for seq, e in decoded}  # ascending: the last one wins
    for f in failures:
        asset = uuid.UUID(f.subject.rpartition(".")[2])
        newest[asset] = max(newest[asset], f.seq)
    assert {r.id: r.last_seq for r in rows.values()} == newest
