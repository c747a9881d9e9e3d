"""The `shoebox` command line: replay the read models, run a service, follow a scan."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.projector.app import Projector
from shared.bus import EventBus, connect, ensure_streams
from shared.db import create_engine, create_schema, drop_schema
from shared.settings import Settings, load_settings

app = typer.Typer(help="Shoebox: a photo server that keeps libraries in step with the disk.",
                  no_args_is_help=True, add_completion=False)


async def replay(settings: Settings, database_url: str, show_progress: bool = True) -> tuple[int, float]:
    """Drop and rebuild the read models in `database_url` from stream sequence 1.

    Returns (events applied up to, seconds)."""
    nc = await connect(settings.nats, "replay")
    engine = create_engine(database_url)
    try:
        await ensure_streams(nc.jetstream(), settings.nats)
        last = await EventBus(nc, settings.nats).last_seq()
        await drop_schema(engine)
        await create_schema(engine)
        started = time.perf_counter()
        with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), disable=not show_progress) as progress:
            task = progress.add_task("replay", total=last)
            projector = Projector(nc, engine, settings.nats,
                                  on_batch=lambda seq: progress.update(task, completed=seq))
            if last:
                await projector.run(until_seq=last)
        return last, time.perf_counter() - started
    finally:
        await nc.drain()
        await engine.dispose()


@app.command("replay")
def replay_command(
    database_url: Annotated[str | None, typer.Option(
        help="Rebuild into this database instead of the configured one")] = None,
) -> None:
    """Drop the read models and rebuild them from the first event (stop the services first)."""
    settings = load_settings()
    url = database_url or settings.db.url
    pg = None
    if not url:
        from shared.infra import start_postgres

        pg, url = start_postgres(settings.data_path / "pg", cleanup_mode="stop")
    last, seconds = asyncio.run(replay(settings, url))
    typer.echo(f"replayed {last} events in {seconds:.1f} s")
    if pg is not None:
        pg.cleanup()


@app.command("serve")
def serve_command(service: str) -> None:
    """Run one service in the foreground (api, projector, scanner, metadata, watcher)."""
    import runpy

    runpy.run_module(f"services.{service}", run_name="__main__")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
