"""The `shoebox` operator command line (typer + rich): status, events, replay, libraries, users.

Every command talks to the system's own NATS and PostgreSQL (the SHOEBOX_* settings; the
embedded ones of the data folder when those are unset) and never writes the read models except
through the projector's code (replay).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select, text

from services.projector import checkpoint
from services.projector.app import Projector
from services.projector.projections import plan
from shared import events as ev
from shared import schema, trace
from shared.bus import EventBus, connect, ensure_streams
from shared.db import create_engine, create_schema, drop_schema
from shared.outage import database_down
from shared.scanprogress import read_progress
from shared.service import setup_logging
from shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(
    help="Shoebox: a photo server that keeps libraries in step with the disk.",
    no_args_is_help=True,
    add_completion=False,
)
events_app = typer.Typer(help="The event stream: one aggregate's history, or live.")
libraries_app = typer.Typer(help="External libraries: list them, scan one.")
users_app = typer.Typer(help="Users.")
app.add_typer(events_app, name="events")
app.add_typer(libraries_app, name="libraries")
app.add_typer(users_app, name="users")

console = Console(highlight=False)


@contextlib.contextmanager
def database(settings: Settings, override: str | None = None) -> Iterator[str]:
    """The database URL: the given one, the configured one, or the data folder's embedded
    PostgreSQL (started for the command when needed, stopped after)."""
    url = override or settings.db.url
    if url:
        yield url
        return
    from shared.infra import start_postgres

    pg, url = start_postgres(settings.data_path / "pg", cleanup_mode="stop")
    try:
        yield url
    finally:
        pg.cleanup()


def with_database(settings: Settings, url: str) -> Settings:
    return msgspec.structs.replace(settings, db=msgspec.structs.replace(settings.db, url=url))


@contextlib.asynccontextmanager
async def nats_of(settings: Settings, name: str) -> AsyncIterator[Client]:
    nc = await connect(settings.nats, name)
    try:
        yield nc
    finally:
        await nc.drain()


def _run(coro: Any) -> Any:
    setup_logging(load_settings().log_level, "cli")
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


# --- status ---------------------------------------------------------------------------------


async def gather_status(settings: Settings, db_url: str) -> dict[str, Any]:
    """Everything `status` shows, as plain data (`--json` prints it)."""
    nats = settings.nats
    out: dict[str, Any] = {"services": [], "streams": [], "consumers": [], "scans": []}
    async with nats_of(settings, "cli-status") as nc:
        js = nc.jetstream()
        with contextlib.suppress(Exception):  # no bucket yet, or no key in it
            kv = await js.key_value(nats.name("heartbeats"))
            for key in await kv.keys():
                entry = await kv.get(key)
                out["services"].append(json.loads(entry.value or b"{}"))
        out["services"].sort(key=lambda s: (s.get("kind", ""), s.get("host", ""), s.get("pid", 0)))
        names = [nats.name("EVENTS"), nats.name("WORK")] + [
            f"KV_{nats.name(b)}" for b in ("leases", "scans", "scan-tasks", "heartbeats")
        ]
        names.append(f"OBJ_{nats.name('thumbs')}")
        last_seq = 0
        for name in names:
            try:
                info = await js.stream_info(name)
            except Exception:
                continue
            if name == nats.name("EVENTS"):
                last_seq = int(info.state.last_seq)
            out["streams"].append(
                {
                    "name": name,
                    "messages": int(info.state.messages),
                    "bytes": int(info.state.bytes),
                    "subjects": int(getattr(info.state, "num_subjects", 0) or 0),
                    "replicas": int(info.config.num_replicas or 1),
                    "last_seq": int(info.state.last_seq),
                }
            )
            if name in (nats.name("EVENTS"), nats.name("WORK")):
                for c in await js.consumers_info(name):
                    out["consumers"].append(
                        {
                            "stream": name,
                            "name": c.name,
                            "lag": int(c.num_pending or 0),
                            "in_flight": int(c.num_ack_pending or 0),
                            "durable": bool(c.config.durable_name),
                        }
                    )
        engine = create_engine(db_url, pool=False)
        try:
            try:
                seq, _version = await checkpoint.read_checkpoint(engine)
            except Exception:  # no schema yet
                seq = 0
            out["projector"] = {"checkpoint": seq, "last_seq": last_seq, "behind": last_seq - seq}
            async with engine.connect() as conn:
                with contextlib.suppress(Exception):
                    rows = await conn.execute(
                        text("SELECT id, library_id FROM scan_runs WHERE state <> 'finished'")
                    )
                    for scan_id, library_id in rows:
                        p = await read_progress(js, nats, scan_id)
                        out["scans"].append(
                            {
                                "scan_id": str(scan_id),
                                "library_id": str(library_id),
                                "mode": p.mode,
                                "dirs_done": p.dirs_done,
                                "dirs_pending": p.pending,
                                "files_seen": p.files_seen,
                            }
                        )
        finally:
            await engine.dispose()
    return out


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
) -> None:
    """Services seen, streams, consumer lag, the projector's checkpoint, scans running."""
    settings = load_settings()
    with database(settings) as url:
        data = _run(gather_status(settings, url))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    t = Table(title="services (heartbeats)")
    for col in ("kind", "host", "pid", "version", "started", "ready"):
        t.add_column(col)
    for s in data["services"]:
        t.add_row(
            s.get("kind", "?"),
            s.get("host", "?"),
            str(s.get("pid", "?")),
            s.get("version", "?"),
            s.get("started_at", "?")[:19],
            "yes" if s.get("ready") else "no",
        )
    console.print(t)
    t = Table(title="streams")
    for col in ("stream", "messages", "bytes", "subjects", "replicas"):
        t.add_column(col)
    for s in data["streams"]:
        t.add_row(
            s["name"], str(s["messages"]), str(s["bytes"]), str(s["subjects"]), str(s["replicas"])
        )
    console.print(t)
    t = Table(title="consumers")
    for col in ("stream", "consumer", "lag", "in flight"):
        t.add_column(col)
    for c in data["consumers"]:
        t.add_row(c["stream"], c["name"], str(c["lag"]), str(c["in_flight"]))
    console.print(t)
    p = data["projector"]
    console.print(
        f"projector: checkpoint {p['checkpoint']} of {p['last_seq']} "
        f"({'up to date' if p['behind'] <= 0 else str(p['behind']) + ' behind'})"
    )
    if not data["scans"]:
        console.print("scans running: none")
    for s in data["scans"]:
        console.print(
            f"scan {s['scan_id']} of library {s['library_id']} ({s['mode']}): "
            f"{s['dirs_done']} folders done, {s['dirs_pending']} pending, "
            f"{s['files_seen']} files seen"
        )


# --- events ---------------------------------------------------------------------------------


def describe(msg: Msg) -> dict[str, Any]:
    """One stored event as plain data: sequence, time, type, who caused it, its fields."""
    headers = msg.headers or {}
    try:
        event: Any = ev.decode(msg.data)
        fields = msgspec.to_builtins(event)
        kind = type(event).__name__
        occurred = event.occurred_at.isoformat()
    except msgspec.DecodeError as e:
        fields, kind, occurred = {"error": str(e)}, "(undecodable)", ""
    for envelope in ("type", "event", "event_id", "stream_id", "occurred_at", "v"):
        fields.pop(envelope, None)
    if "password_hash" in fields:
        fields["password_hash"] = "…"
    return {
        "seq": int(msg.metadata.sequence.stream),
        "time": occurred,
        "type": kind,
        "actor": headers.get(trace.ACTOR_HEADER, "(not recorded)"),
        "correlation_id": headers.get(trace.CORRELATION_HEADER, ""),
        "subject": msg.subject,
        "fields": fields,
    }


async def aggregate_history(settings: Settings, aggregate_id: str) -> list[dict[str, Any]]:
    """Every event of the aggregate with this id (whatever its kind), oldest first."""
    nats = settings.nats
    async with nats_of(settings, "cli-events") as nc:
        js = nc.jetstream()
        stream = nats.name("EVENTS")
        found: list[dict[str, Any]] = []
        pattern = nats.subject("events", "*", aggregate_id)
        info = await js.stream_info(stream, subjects_filter=pattern)
        total = sum((info.state.subjects or {}).values())
        if not total:
            return []
        sub = await js.pull_subscribe(pattern, stream=stream)
        try:
            while len(found) < total:
                for msg in await sub.fetch(min(256, total - len(found)), timeout=5):
                    found.append(describe(msg))
        finally:
            await sub.unsubscribe()
        return sorted(found, key=lambda e: e["seq"])


def _line(e: dict[str, Any]) -> str:
    fields = json.dumps(e["fields"], default=str)
    if len(fields) > 160:
        fields = fields[:157] + "..."
    cid = f" [{e['correlation_id']}]" if e["correlation_id"] else ""
    return f"{e['seq']:>8}  {e['time'][:23]}  {e['type']:<24} by {e['actor']}{cid}  {fields}"


@events_app.command("show")
def events_show(
    aggregate_id: Annotated[str, typer.Argument(help="an asset, library, album or user id")],
) -> None:
    """The decoded history of one aggregate, oldest first, with times and who caused it."""
    try:
        uuid.UUID(aggregate_id)
    except ValueError:
        raise typer.BadParameter(f"{aggregate_id!r} is not an id (a UUID)") from None
    history = _run(aggregate_history(load_settings(), aggregate_id))
    if not history:
        typer.echo(f"no events of {aggregate_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{history[0]['subject'].rsplit('.', 2)[-2]} {aggregate_id}: {len(history)} events")
    for e in history:
        typer.echo(_line(e))


async def tail(settings: Settings, count: int, last: int, stop_after: float) -> None:
    async with nats_of(settings, "cli-tail") as nc:
        js = nc.jetstream()
        stream = settings.nats.name("EVENTS")
        last_seq = int((await js.stream_info(stream)).state.last_seq)
        from nats.js.api import ConsumerConfig, DeliverPolicy

        start = max(1, last_seq - last + 1) if last else last_seq + 1
        sub = await js.pull_subscribe(
            settings.nats.subject("events", ">"),
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                inactive_threshold=30.0,
            ),
        )
        from nats.errors import TimeoutError as NatsTimeout

        seen = 0
        deadline = time.monotonic() + stop_after if stop_after else None
        try:
            while not count or seen < count:
                if deadline is not None and time.monotonic() > deadline:
                    break
                try:
                    msgs = await sub.fetch(100, timeout=1)
                except (NatsTimeout, TimeoutError):
                    continue
                for msg in msgs:
                    typer.echo(_line(describe(msg)))
                    await msg.ack()
                    seen += 1
                    if count and seen >= count:
                        break
        finally:
            await sub.unsubscribe()


@events_app.command("tail")
def events_tail(
    last: Annotated[int, typer.Option(help="start with the last N events")] = 0,
    count: Annotated[int, typer.Option(help="stop after N events (0: follow until Ctrl-C)")] = 0,
    seconds: Annotated[float, typer.Option(help="stop after this long (0: never)")] = 0.0,
) -> None:
    """Follow the event stream live, one decoded event a line."""
    _run(tail(load_settings(), count, last, seconds))


# --- replay ---------------------------------------------------------------------------------

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
        with Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not show_progress,
        ) as progress:
            task = progress.add_task("replay", total=last)
            projector = Projector(
                nc, engine, settings.nats, on_batch=lambda seq: progress.update(task, completed=seq)
            )
            if last:
                await projector.run(until_seq=last, retry=False)
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
    async with nats_of(settings, "cli-replay-asset") as nc:
        js = nc.jetstream()
        subject = nats.subject("events", "asset", str(asset_id))
        info = await js.stream_info(nats.name("EVENTS"), subjects_filter=subject)
        total = sum((info.state.subjects or {}).values())
        if total:
            sub = await js.pull_subscribe(subject, stream=nats.name("EVENTS"))
            try:
                while len(history) < total:
                    for msg in await sub.fetch(min(256, total - len(history)), timeout=5):
                        history.append((int(msg.metadata.sequence.stream), ev.decode(msg.data)))
            finally:
                await sub.unsubscribe()
    if not history:
        return 0
    history.sort(key=lambda h: h[0])
    from services.projector.app import positional

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
                    sql, names = positional(stmt)
                    await raw.executemany(sql, [tuple(r[n] for n in names) for r in rows])
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


# --- libraries and users --------------------------------------------------------------------


async def list_libraries(db_url: str) -> list[dict[str, Any]]:
    engine = create_engine(db_url, pool=False)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT l.id, l.name, l.type, u.email, l.import_paths, "
                    "(SELECT count(*) FROM assets a WHERE a.library_id = l.id) "
                    "FROM libraries l JOIN users u ON u.id = l.owner_id ORDER BY l.name"
                )
            )
            return [
                {
                    "id": str(r[0]),
                    "name": r[1],
                    "type": r[2],
                    "owner": r[3],
                    "import_paths": list(r[4] or []),
                    "assets": int(r[5]),
                }
                for r in rows
            ]
    finally:
        await engine.dispose()


@libraries_app.command("list")
def libraries_list(
    as_json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
) -> None:
    """Every library: id, name, type, owner, import paths, assets."""
    settings = load_settings()
    with database(settings) as url:
        libs = _run(list_libraries(url))
    if as_json:
        typer.echo(json.dumps(libs, indent=2))
        return
    t = Table(title="libraries")
    for col in ("id", "name", "type", "owner", "import paths", "assets"):
        t.add_column(col, overflow="fold")
    for lib in libs:
        t.add_row(
            lib["id"],
            lib["name"],
            lib["type"],
            lib["owner"],
            "\n".join(lib["import_paths"]),
            str(lib["assets"]),
        )
    console.print(t)


@contextlib.asynccontextmanager
async def operator_context(settings: Settings) -> AsyncIterator[Any]:
    """The API's commands, run by the operator (the same checks as a request)."""
    from services.api.app import close_context, open_context

    ctx = await open_context(settings)
    try:
        yield ctx
    finally:
        await close_context(ctx)


async def _admin(ctx: Any) -> Any:
    from services.api.auth import AuthUser

    async with ctx.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT id, email, name FROM users WHERE is_admin ORDER BY email LIMIT 1")
            )
        ).first()
    if row is None:
        typer.echo("the server has no admin yet: run `shoebox users create-admin`", err=True)
        raise typer.Exit(1)
    return AuthUser(id=row[0], email=row[1], name=row[2], is_admin=True)


async def scan_library(
    settings: Settings, library_id: uuid.UUID, mode: ev.ScanMode, path: str | None
) -> dict[str, Any]:
    """Ask for a scan as the admin and follow it with a progress bar until it has finished."""
    from shared.errors import ShoeboxError

    async with operator_context(settings) as ctx:
        actor = await _admin(ctx)
        with trace.acting("cli", trace.new_correlation_id()):
            try:
                scan_id = await ctx_request_scan(ctx, actor, library_id, mode, path)
            except ShoeboxError as e:
                typer.echo(f"scan refused: {e.detail}", err=True)
                raise typer.Exit(1) from None
        js = ctx.nc.jetstream()
        with Progress(
            TextColumn("[bold]folders"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[files]} files"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("scan", total=None, files=0)
            while True:
                p = await read_progress(js, settings.nats, scan_id)
                total = p.dirs_done + p.pending or None
                progress.update(task, completed=p.dirs_done, total=total, files=p.files_seen)
                async with ctx.engine.connect() as conn:
                    done = (
                        await conn.execute(
                            text("SELECT state = 'finished' FROM scan_runs WHERE id = :s"),
                            {"s": scan_id},
                        )
                    ).scalar()
                if done:
                    break
                await asyncio.sleep(0.25)  # a progress bar's refresh, not a wait for an outcome
        async with ctx.engine.connect() as conn:
            row = (
                (await conn.execute(text("SELECT * FROM scan_runs WHERE id = :s"), {"s": scan_id}))
                .mappings()
                .one()
            )
        return {k: (str(v) if isinstance(v, uuid.UUID | datetime) else v) for k, v in row.items()}


async def ctx_request_scan(
    ctx: Any, actor: Any, library_id: uuid.UUID, mode: ev.ScanMode, path: str | None
) -> uuid.UUID:
    from services.api import commands

    return await commands.request_scan(ctx, actor, library_id, mode, "cli", path)


@libraries_app.command("scan")
def libraries_scan(
    library_id: str,
    mode: Annotated[ev.ScanMode, typer.Option(help="new, modified or force")] = ev.ScanMode.NEW,
    path: Annotated[
        str | None, typer.Option(help="scan only this folder (or file) inside an import path")
    ] = None,
) -> None:
    """Scan a library and follow it with a live progress bar."""
    try:
        lib = uuid.UUID(library_id)
    except ValueError:
        raise typer.BadParameter(f"{library_id!r} is not a library id") from None
    settings = load_settings()
    with database(settings) as url:
        settings = msgspec.structs.replace(
            settings, db=msgspec.structs.replace(settings.db, url=url)
        )
        run = _run(scan_library(settings, lib, mode, path))
    counts = ", ".join(
        f"{k.removeprefix('files_') if k.startswith('files_') else k} {run[k]}"
        for k in ("files_seen", "new", "changed", "missing", "failed")
        if k in run
    )
    typer.echo(f"scan {run['id']} finished: {counts}")


async def create_admin(settings: Settings, email: str, password: str, name: str) -> uuid.UUID:
    from services.api import commands
    from services.api.schemas import SignUpDto

    async with operator_context(settings) as ctx:
        with trace.acting("cli", trace.new_correlation_id()):
            return await commands.admin_sign_up(
                ctx, SignUpDto(email=email, password=password, name=name)
            )


@users_app.command("create-admin")
def users_create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    name: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, envvar="SHOEBOX_ADMIN_PASSWORD")
    ],
) -> None:
    """Create the server's administrator (Immich's first sign-up), once."""
    from shared.errors import ShoeboxError

    settings = load_settings()
    with database(settings) as url:
        settings = msgspec.structs.replace(
            settings, db=msgspec.structs.replace(settings.db, url=url)
        )
        try:
            admin_id = _run(create_admin(settings, email, password, name))
        except ShoeboxError as e:
            typer.echo(f"not created: {e.detail}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"admin {email} created: {admin_id}")


@app.command("serve")
def serve_command(service: str) -> None:
    """Run one service in the foreground (api, projector, scanner, metadata, watcher)."""
    import runpy

    runpy.run_module(f"services.{service}", run_name="__main__")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
