"""`shoebox replay`: the read models rebuilt from event 1 (or one asset's row), compared."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy import func, select

from services.cli.base import _run, app, database, nats_of
from services.cli.history import asset_folder, births, subject_messages
from services.projector.app import Projector
from services.projector.projections import plan
from shared import events as ev
from shared import schema
from shared.bus import EventBus, connect, ensure_streams
from shared.db import create_engine, create_schema, drop_deferred_indexes, drop_schema
from shared.outage import database_down
from shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

REPLAY_BATCH = 2000
"""Events a replay's transactions apply: twice the projector's own, half the commits (a replay
is read by nobody while it runs; decision 0034)."""

COUNTED = [t for t in schema.metadata.sorted_tables if t.name != "projection_checkpoint"]


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows of every read-model table."""
    counts: dict[str, int] = {}
    async with engine.connect() as conn:
        for table in COUNTED:
            try:
                counts[table.name] = int(
                    (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                )
            except Exception:
                await conn.rollback()
                counts[table.name] = -1  # the table does not exist there
    return counts


class EventsPerSecond(ProgressColumn):
    """The replay's speed, in events a second (rich's estimate over the last 30 s)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} events/s" if task.speed else "… events/s")


async def replay(
    settings: Settings, database_url: str, show_progress: bool = True
) -> tuple[int, float]:
    """Drop and rebuild the read models in `database_url` from stream sequence 1.

    Returns (events applied up to, seconds)."""
    nc = await connect(settings.nats, "replay")
    engine = create_engine(database_url)
    try:
        await ensure_streams(nc, settings.nats)
        last = await EventBus(nc, settings.nats).last_seq()
        await drop_schema(engine)
        await create_schema(engine)
        started = time.perf_counter()
        # Into empty tables, the non-unique indexes of assets are built once at the end: cheaper
        # than an entry for every row written and every row rewritten. Should the replay stop
        # before that, the next create_schema (any start of the projector) builds them.
        await drop_deferred_indexes(engine)
        with Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            EventsPerSecond(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            disable=not show_progress,
        ) as progress:
            task = progress.add_task("replay", total=last)
            projector = Projector(
                nc,
                engine,
                settings.nats,
                batch_size=REPLAY_BATCH,
                on_batch=lambda seq: progress.update(task, completed=seq),
            )
            if last:
                await projector.run(until_seq=last, retry=False)
        await create_schema(engine)
        return last, time.perf_counter() - started
    finally:
        await nc.drain()
        await engine.dispose()


async def replay_and_compare(
    settings: Settings, target: str, live: str, show_progress: bool
) -> tuple[int, float, dict[str, int], dict[str, int]]:
    """Replay into `target`; returns (last seq, seconds, live counts, replayed counts). When
    the target is the live database itself, its counts from before the replay are the live
    ones."""
    live_engine = create_engine(live, pool=False)
    try:
        before = await row_counts(live_engine)
        last, seconds = await replay(settings, target, show_progress)
        live_counts = before if target == live else await row_counts(live_engine)
    finally:
        await live_engine.dispose()
    target_engine = create_engine(target, pool=False)
    try:
        after = await row_counts(target_engine)
    finally:
        await target_engine.dispose()
    return last, seconds, live_counts, after


async def replay_asset(settings: Settings, db_url: str, asset_id: uuid.UUID) -> int:
    """Rebuild one asset's row from its own events: its row is deleted and its events applied
    again in one transaction (album memberships, kept by the albums' events, are kept)."""
    nats = settings.nats
    history: list[tuple[int, ev.BaseEvent]] = []
    where = await asset_folder(db_url, asset_id)
    async with nats_of(settings, "cli-replay-asset") as nc:
        js = nc.jetstream()
        subject = nats.subject("events", "asset", str(asset_id))
        for stored in await subject_messages(js, nats.name("EVENTS"), subject):
            history.append((stored.seq, ev.decode(stored.data)))
        if where is not None:
            # Its births, cut down to its file and to no scan (the scan's counters stay).
            for stored, born in await births(js, nats, asset_id, *where):
                history.append((stored.seq, msgspec.structs.replace(born, scan_id=None)))
    if not history:
        return 0
    history.sort(key=lambda h: h[0])
    from services.projector.send import send

    engine = create_engine(db_url, pool=False)
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            async with raw.transaction():
                members = await raw.fetch(
                    "SELECT album_id, asset_id FROM album_assets WHERE asset_id = $1", asset_id
                )
                await raw.execute("DELETE FROM assets WHERE id = $1", asset_id)
                for stmt, rows in plan(history):
                    await send(raw, stmt, rows)
                await raw.executemany(
                    "INSERT INTO album_assets (album_id, asset_id) SELECT $1, $2 "
                    "WHERE EXISTS (SELECT 1 FROM assets WHERE id = $2) ON CONFLICT DO NOTHING",
                    [(m["album_id"], m["asset_id"]) for m in members],
                )
    finally:
        await engine.dispose()
    return len(history)


@app.command("replay")
def replay_command(
    database_url: Annotated[
        str | None, typer.Option(help="Rebuild into this database instead of the configured one")
    ] = None,
    asset: Annotated[
        str | None, typer.Option(help="Rebuild only this asset's row, from its own events")
    ] = None,
) -> None:
    """Rebuild the read models from event 1, then compare row counts with the live ones.

    A rebuild in place drops the tables: stop the services first."""
    settings = load_settings()
    try:
        with database(settings) as live:
            if asset is not None:
                try:
                    asset_id = uuid.UUID(asset)
                except ValueError:
                    raise typer.BadParameter(f"{asset!r} is not an asset id") from None
                n = _run(replay_asset(settings, database_url or live, asset_id))
                if not n:
                    typer.echo(f"no events of asset {asset}", err=True)
                    raise typer.Exit(1)
                typer.echo(f"asset {asset}: rebuilt from {n} events")
                return
            target = database_url or live
            last, seconds, live_counts, counts = _run(
                replay_and_compare(settings, target, live, True)
            )
    except typer.Exit:
        raise
    except Exception as e:
        if not database_down(e):
            raise
        reason = f"{type(e).__name__}: {e}"
        typer.echo(f"replay stopped: the database is unavailable ({reason})", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"replayed {last} events in {seconds:.1f} s")
    differ = {t: (live_counts[t], counts[t]) for t in counts if live_counts.get(t) != counts[t]}
    for table in counts:
        mark = "" if table not in differ else f"  (live: {live_counts.get(table)})"
        typer.echo(f"  {table:<22} {counts[table]:>10}{mark}")
    if differ:
        typer.echo(f"row counts differ from the live read models in {len(differ)} tables")
        raise typer.Exit(2)
    typer.echo("row counts match the live read models")
