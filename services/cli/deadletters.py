"""`shoebox dead-letters`: the messages the services' consumers gave up on (decision 0024)."""

from __future__ import annotations

import json
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from services.cli.base import _run, app, console, database
from shared.db import create_engine
from shared.deadletters import DeadLetter, list_dead_letters
from shared.settings import load_settings


async def dead_letters(db_url: str, consumer: str | None, limit: int) -> list[DeadLetter]:
    engine = create_engine(db_url, pool=False)
    try:
        return await list_dead_letters(engine, consumer=consumer, limit=limit)
    finally:
        await engine.dispose()


@app.command("dead-letters")
def dead_letters_command(
    consumer: Annotated[
        str | None, typer.Option(help="only this consumer's (scanner-dirs, metadata, ...)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, the newest first")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
) -> None:
    """Messages a consumer could not decode, or that failed on their last allowed delivery."""
    settings = load_settings()
    with database(settings) as url:
        letters = _run(dead_letters(url, consumer, limit))
    if as_json:
        typer.echo(json.dumps(msgspec.to_builtins(letters), indent=2))
        return
    if not letters:
        console.print("dead letters: none")
        return
    t = Table(title="dead letters (newest first)")
    for col in ("failed", "consumer", "subject", "seq", "deliveries", "error", "payload"):
        t.add_column(col, overflow="fold")
    for d in letters:
        t.add_row(
            d.failed_at.isoformat()[:19],
            d.consumer,
            d.subject,
            str(d.stream_seq),
            str(d.deliveries),
            d.error,
            d.payload[:80],
        )
    console.print(t)
