"""What every `shoebox` command shares: the typer apps, the console, NATS and the database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import typer
from rich.console import Console

from shared.bus import connect
from shared.service import setup_logging
from shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from nats.aio.client import Client

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
