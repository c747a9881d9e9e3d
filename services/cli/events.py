"""`shoebox events`: one aggregate's decoded history, or the stream live."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer

from services.cli.base import _run, database, events_app, nats_of
from services.cli.history import Stored, asset_folder, births, subject_messages
from shared import events as ev
from shared import trace
from shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from nats.aio.msg import Msg


def describe(msg: Msg) -> dict[str, Any]:
    """One delivered event as plain data: sequence, time, type, who caused it, its fields."""
    return describe_stored(
        Stored(int(msg.metadata.sequence.stream), msg.subject, msg.headers or {}, msg.data)
    )


def describe_stored(msg: Stored, event: Any = None) -> dict[str, Any]:
    """One stored event (or `event`, what it says of one asset) as plain data."""
    headers = msg.headers
    try:
        event = event if event is not None else ev.decode(msg.data)
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
        "seq": msg.seq,
        "time": occurred,
        "type": kind,
        "actor": headers.get(trace.ACTOR_HEADER, "(not recorded)"),
        "correlation_id": headers.get(trace.CORRELATION_HEADER, ""),
        "subject": msg.subject,
        "fields": fields,
    }


async def aggregate_history(settings: Settings, aggregate_id: str) -> list[dict[str, Any]]:
    """Every event of the aggregate with this id (whatever its kind), oldest first; an asset's
    births, stored on its folder's subject, with them (cut down to its file)."""
    nats = settings.nats
    async with nats_of(settings, "cli-events") as nc:
        js = nc.jetstream()
        stream = nats.name("EVENTS")
        found: list[dict[str, Any]] = []
        pattern = nats.subject("events", "*", aggregate_id)
        info = await js.stream_info(stream, subjects_filter=pattern)
        subjects = list(info.state.subjects or {})
        for subject in subjects:
            found += [describe_stored(m) for m in await subject_messages(js, stream, subject)]
        if not subjects or all(".asset." in s for s in subjects):
            with database(settings) as url:
                where = await asset_folder(url, uuid.UUID(aggregate_id))
            if where is not None:
                for stored, born in await births(js, nats, uuid.UUID(aggregate_id), *where):
                    found.append(_birth(stored, born))
        return sorted(found, key=lambda e: e["seq"])


def _birth(stored: Stored, born: ev.FilesDiscovered) -> dict[str, Any]:
    """An asset's birth: its file's part of a FilesDiscovered, and how many files that held."""
    e = describe_stored(stored, born)
    (f,) = born.files
    e["born"] = True
    e["fields"] = {
        "path": born.path_of(f),
        "type": f.type,
        "file_size": f.size,
        "mtime_ms": f.mtime_ms,
        "files_in_event": len(ev.decode(stored.data).files),  # type: ignore[union-attr]
        "scan_id": born.scan_id,
    }
    return e


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
    kinds = [e["subject"].rsplit(".", 2)[-2] for e in history]
    kind = (
        "asset"
        if "asset" in kinds or "FilesDiscovered" in (e["type"] for e in history)
        else kinds[0]
    )
    typer.echo(f"{kind} {aggregate_id}: {len(history)} events")
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
