"""`shoebox status`: services, streams, consumers, the projector, scans, what failed."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import text

from services.cli.base import _run, app, console, database, nats_of
from services.projector import checkpoint
from shared.db import create_engine
from shared.deadletters import failure_counts
from shared.scanprogress import read_progress
from shared.settings import Settings, load_settings


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
            try:
                dead, passed_over = await failure_counts(engine)
            except Exception:  # no schema yet
                dead, passed_over = 0, 0
            out["failures"] = {"dead_letters": dead, "passed_over": passed_over}
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
    """Services seen, streams, consumer lag, the projector's checkpoint, dead letters and
    passed-over events, scans running."""
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
    f = data["failures"]
    console.print(
        f"dead letters: {f['dead_letters']} (`shoebox dead-letters`); events the projector "
        f"passed over: {f['passed_over']} (projection_failures)"
    )
    if not data["scans"]:
        console.print("scans running: none")
    for s in data["scans"]:
        console.print(
            f"scan {s['scan_id']} of library {s['library_id']} ({s['mode']}): "
            f"{s['dirs_done']} folders done, {s['dirs_pending']} pending, "
            f"{s['files_seen']} files seen"
        )
