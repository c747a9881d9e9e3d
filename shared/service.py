"""Process plumbing shared by every service: logging, settings, signals, connections."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import anyio

from shared.health import Health, serve_health
from shared.metrics import start_metrics
from shared.settings import Settings, load_settings
from shared.trace import JsonFormatter, TraceFilter, set_process_actor


def _closed_queue(exc: BaseException | None) -> bool:
    """Whether exc is faststream's pull loop handing fetched messages to a consumer that has
    stopped: a group of anyio ClosedResourceErrors and nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_closed_queue(e) for e in exc.exceptions)
    return isinstance(exc, anyio.ClosedResourceError)


class QuietFetchTimeouts(logging.Filter):
    """An empty pull (nats-py raises a bare TimeoutError where faststream expects its own) is
    the normal state of an idle consumer; faststream's supervisor logs it at ERROR with a
    traceback, which hides real faults. Those records, and the INFO line before each, become
    DEBUG. So does the traceback of a stop that lands while a fetch brings messages (faststream
    puts them into its closed queue; they were not acked, so they come back after ack_wait),
    and SQLAlchemy's of a goodbye to a connection PostgreSQL had already cut (a pool closing a
    socket that is gone: the outage itself is reported where the query failed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        error = record.exc_info[1] if record.exc_info else None
        timeout = isinstance(error, TimeoutError)
        if (
            (timeout and "raised an exception, retrying" in message)
            or (message.startswith("callback for Task-") and "is being executed" in message)
            or (message.startswith("Task exception was never retrieved") and _closed_queue(error))
            or (message.startswith("Exception closing connection") and isinstance(error, OSError))
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def setup_logging(level: str = "INFO", service: str = "shoebox") -> None:
    """Logging with the service name in each line: JSON lines (with the actor and the
    correlation id of the request or scan in hand) when stderr is not a terminal, else text."""
    set_process_actor(service)
    handler = logging.StreamHandler()
    if sys.stderr.isatty() and os.environ.get("SHOEBOX_LOG_FORMAT", "") != "json":
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s {service} %(levelname)s %(name)s [%(correlation_id)s]: %(message)s"
            )
        )
    else:
        handler.setFormatter(JsonFormatter(service))
    handler.addFilter(TraceFilter())
    handler.addFilter(QuietFetchTimeouts())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("nats").setLevel(logging.WARNING)
    logging.getLogger("faststream").setLevel(logging.WARNING)


class FastStreamBuild(Protocol):
    def __call__(self, settings: Settings, *, health: Health | None = None) -> Any: ...


class ServiceBody(Protocol):
    def __call__(
        self, settings: Settings, stop: asyncio.Event, *, health: Health | None = None
    ) -> Awaitable[None]: ...


@contextlib.asynccontextmanager
async def health_server(settings: Settings, health: Health) -> AsyncIterator[None]:
    """Serve /livez and /readyz on SHOEBOX_HEALTH_PORT (0 = none) while the body runs."""
    server = (
        await serve_health(health, settings.host, settings.health_port)
        if settings.health_port
        else None
    )
    try:
        yield
    finally:
        if server is not None:
            server.close()


def fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates an arena of its own, and a freed arena's pages
    stay resident (a scanner's listing threads and faststream's workers). Called first thing
    in a service's own process (its threads start after); a no-op without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_ARENA_MAX, arenas)


_M_ARENA_MAX = -8  # glibc's malloc.h


def run_faststream(name: str, build: FastStreamBuild) -> None:
    """Run a faststream service (`build(settings, health=...)` returns the FastStream app)
    until a signal, with its health endpoints."""
    fewer_malloc_arenas()
    settings = load_settings()
    setup_logging(settings.log_level, name)
    start_metrics(name)

    async def _main() -> None:
        health = Health(name)
        async with health_server(settings, health):
            await build(settings, health=health).run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


def run_service(name: str, body: ServiceBody) -> None:
    """Run `body(settings, stop, health=...)` until SIGINT/SIGTERM sets `stop`."""
    fewer_malloc_arenas()
    settings = load_settings()
    setup_logging(settings.log_level, name)
    start_metrics(name)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        health = Health(name)
        async with health_server(settings, health):
            await body(settings, stop, health=health)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
