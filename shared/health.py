"""Liveness, readiness and heartbeats of every process; `python -m shared.health URL` probes one.

The contract (docs/decisions/0021-health-cluster-and-operator-cli.md): every service answers
`GET /livez` (200 while its event loop runs) and `GET /readyz` (200 only while it is connected
to NATS, to PostgreSQL where it uses it, and its consumer is bound; else 503 with a JSON body
naming what is not). The api serves them on its own port; a worker on SHOEBOX_HEALTH_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.client import Client

    from shared.pg import Scalar
    from shared.settings import NatsSettings

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: None when fine, else the reason it is not."""

CHECK_TIMEOUT = 2.0  # seconds one check may take before it counts as failed
BEAT_EVERY = 5.0  # seconds between heartbeats (the bucket keeps one for 30 s)
VERSION = "0.1.0"


class Health:
    """The readiness checks of one process, each added by the part that owns the resource."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.checks: dict[str, Check] = {}
        self.started_at = datetime.now(UTC)

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """(ready?, name -> "ok" or the reason) over every check, run together."""
        if not self.checks:
            return False, {"starting": "not connected yet"}
        names = list(self.checks)
        results = await asyncio.gather(*(_bounded(self.checks[n]) for n in names))
        report = {n: r or "ok" for n, r in zip(names, results, strict=True)}
        return all(r is None for r in results), report


async def _bounded(check: Check) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer in {CHECK_TIMEOUT:.0f} s"
    except Exception as e:  # a probe reports every failure as a reason, never raises
        return f"{type(e).__name__}: {e}"


def nats_check(nc: Client) -> Check:
    async def check() -> str | None:
        return None if nc.is_connected else "not connected to NATS"

    return check


def database_check(query: Scalar, table: str = "") -> Check:
    """PostgreSQL answers (and, with `table`, the read-model schema exists); `query` is a
    pool's fetchval, or shared/db.py's `scalar` of an engine."""
    sql = f"SELECT 1 FROM {table} LIMIT 1" if table else "SELECT 1"

    async def check() -> str | None:
        await query(sql)
        return None

    return check


def consumer_check(nc: Client, stream: str, durable: str) -> Check:
    """The durable consumer exists on the stream (JetStream answers for it: on a cluster,
    its leader is elected)."""

    async def check() -> str | None:
        await nc.jetstream().consumer_info(stream, durable)
        return None

    return check


def flag_check(flag: Callable[[], bool], reason: str) -> Check:
    async def check() -> str | None:
        return None if flag() else reason

    return check


async def _answer(health: Health, path: str) -> tuple[int, dict[str, object]]:
    if path == "/livez":
        return 200, {"status": "live", "service": health.kind}
    if path == "/readyz":
        ok, report = await health.ready()
        body: dict[str, object] = {"status": "ready" if ok else "unready", "checks": report}
        if not ok:
            body["reason"] = "; ".join(f"{n}: {r}" for n, r in report.items() if r != "ok")
        return (200 if ok else 503), body
    return 404, {"message": "Not Found", "statusCode": 404}


async def readiness_response(health: Health, path: str) -> tuple[int, bytes]:
    """Status and JSON body of /livez or /readyz (the api serves these through Litestar)."""
    status, body = await _answer(health, path)
    return status, json.dumps(body).encode()


async def serve_health(health: Health, host: str, port: int) -> asyncio.Server:
    """A minimal HTTP/1.1 server for /livez and /readyz in this process's event loop, so a
    loop that stops turning stops answering liveness."""
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing in them matters here
            method, _, rest = line.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, payload = 405, b'{"message":"Method Not Allowed"}'
            else:
                status, payload = await readiness_response(health, path)
            head = (
                f"HTTP/1.1 {status} {reasons.get(status, '')}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (payload if method == "GET" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass  # a client that sends nothing sensible gets nothing
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port)
    log.info("%s: health on %s:%d (/livez, /readyz)", health.kind, host, port)
    return server


def heartbeat_key(kind: str) -> str:
    """One key per process in the heartbeats bucket (KV keys allow [-_.=/A-Za-z0-9])."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{kind}.{host}.{os.getpid()}"


async def beat(nc: Client, settings: NatsSettings, health: Health, stop: asyncio.Event) -> None:
    """Write this process's heartbeat (kind, host, pid, version, started_at, ready) every few
    seconds until `stop`; `shoebox status` lists them. A missed beat is only logged."""
    from nats.errors import Error as NatsError

    key = heartbeat_key(health.kind)
    kv = None
    while not stop.is_set():
        try:
            if kv is None:
                kv = await nc.jetstream().key_value(settings.name("heartbeats"))
            ok, _report = await health.ready()
            value = {
                "kind": health.kind,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "version": VERSION,
                "started_at": health.started_at.isoformat(),
                "beat_at": datetime.now(UTC).isoformat(),
                "ready": ok,
            }
            await kv.put(key, json.dumps(value).encode())
        except (NatsError, TimeoutError) as e:
            log.debug("%s: heartbeat not written: %s", health.kind, e)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), BEAT_EVERY)
    if kv is not None:
        with contextlib.suppress(Exception):  # leaving: the TTL removes it otherwise
            await kv.delete(key)


def probe(url: str, timeout: float = 3.0) -> bool:
    """Whether `url` answers 200 within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.health URL [TIMEOUT]`: exit 0 when URL answers 200 in time, else 1."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m shared.health URL [TIMEOUT_SECONDS]", file=sys.stderr)
        return 2 if not args else 0
    timeout = float(args[1]) if len(args) > 1 else 3.0
    started = time.monotonic()
    ok = probe(args[0], timeout)
    if not ok:
        print(f"{args[0]}: not healthy ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
