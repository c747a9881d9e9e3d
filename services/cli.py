"""The `shoebox` command line: replay the read models, run a service, follow a scan."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.projector.app import Projector, database_down
from shared.bus import EventBus, connect, ensure_streams
from shared.db import create_engine, create_schema, drop_schema
from shared.settings import Settings, load_settings

app = typer.Typer(
    help="Shoebox: a photo server that keeps libraries in step with the disk.",
    no_args_is_help=True,
    add_completion=False,
)


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


@app.command("replay")
def replay_command(
    database_url: Annotated[
        str | None, typer.Option(help="Rebuild into this database instead of the configured one")
    ] = None,
) -> None:
    """Drop the read models and rebuild them from the first event (stop the services first)."""
    settings = load_settings()
    url = database_url or settings.db.url
    pg = None
    if not url:
        from shared.infra import start_postgres

        pg, url = start_postgres(settings.data_path / "pg", cleanup_mode="stop")
    try:
        last, seconds = asyncio.run(replay(settings, url))
    except Exception as e:
        if not database_down(e):
            raise
        reason = f"{type(e).__name__}: {e}"
        typer.echo(f"replay stopped: the database is unavailable ({reason})", err=True)
        raise typer.Exit(1) from e
    finally:
        if pg is not None:
            pg.cleanup()
    typer.echo(f"replayed {last} events in {seconds:.1f} s")


@app.command("scan")
def scan_command(
    library_id: str,
    mode: Annotated[str, typer.Option(help="new, modified or force")] = "new",
    path: Annotated[
        str, typer.Option(help="scan only this folder (or file) inside an import path")
    ] = "",
    server: Annotated[str, typer.Option(envvar="SHOEBOX_SERVER")] = "http://127.0.0.1:2283/api",
    api_key: Annotated[str, typer.Option(envvar="SHOEBOX_API_KEY", help="an API key")] = "",
) -> None:
    """Scan a library through the API and follow it with a progress bar."""
    import httpx

    body: dict[str, dict[str, bool | str] | None] = {
        "new": None,
        "modified": {"refreshModifiedFiles": True},
        "force": {"refreshAllFiles": True},
    }
    if mode not in body:
        raise typer.BadParameter("mode must be new, modified or force")
    request = body[mode]
    if path:
        request = {**(request or {}), "path": path}
    with httpx.Client(base_url=server, headers={"x-api-key": api_key}, timeout=30) as http:
        url = f"/libraries/{library_id}/scan"
        r = http.post(url, json=request) if request else http.post(url)
        if r.status_code != 204:
            typer.echo(f"scan refused ({r.status_code}): {r.json().get('message')}", err=True)
            raise typer.Exit(1)
        scan_id = http.get(url).json()["scanId"]
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
        ) as progress:
            task = progress.add_task("folders", total=None, counts="")
            while True:
                s = http.get(url).json()
                total = s["dirsDone"] + s["dirsPending"] or None
                progress.update(
                    task,
                    completed=s["dirsDone"],
                    total=total,
                    counts=(
                        f"{s['filesSeen']} files, {s['new']} new, {s['changed']} changed, "
                        f"{s['missing']} missing, {s['failed']} problems"
                    ),
                )
                if s["scanId"] == scan_id and s["state"] == "finished":
                    progress.update(task, total=s["dirsDone"] or 1, completed=s["dirsDone"] or 1)
                    break
                time.sleep(0.25)
        for problem in s["problems"][:20]:
            typer.echo(f"  problem: {problem['path']}: {problem['problem']}")
        for path in s["unavailableImportPaths"]:
            typer.echo(f"  import path unavailable: {path}")


@app.command("serve")
def serve_command(service: str) -> None:
    """Run one service in the foreground (api, projector, scanner, metadata, watcher)."""
    import runpy

    runpy.run_module(f"services.{service}", run_name="__main__")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
