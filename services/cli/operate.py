"""`shoebox libraries` and `shoebox users`: list and scan libraries, create the admin; `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text

from services.cli.base import _run, app, console, database, libraries_app, users_app
from shared import events as ev
from shared import trace
from shared.db import create_engine
from shared.scanprogress import read_progress
from shared.settings import Settings, load_settings


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
