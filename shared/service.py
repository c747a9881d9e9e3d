"""Process plumbing shared by every service: logging, settings, signals, connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from shared.metrics import start_metrics
from shared.settings import Settings, load_settings


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
    puts them into its closed queue; they were not acked, so they come back after ack_wait)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        error = record.exc_info[1] if record.exc_info else None
        timeout = isinstance(error, TimeoutError)
        if (
            (timeout and "raised an exception, retrying" in message)
            or (message.startswith("callback for Task-") and "is being executed" in message)
            or (message.startswith("Task exception was never retrieved") and _closed_queue(error))
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def setup_logging(level: str = "INFO", service: str = "shoebox") -> None:
    """Console logging with the service name in each line."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietFetchTimeouts())
    logging.getLogger("nats").setLevel(logging.WARNING)
    logging.getLogger("faststream").setLevel(logging.WARNING)


def run_faststream(name: str, build: Callable[[Settings], Any]) -> None:
    """Run a faststream service (`build(settings)` returns the FastStream app) until a signal."""
    settings = load_settings()
    setup_logging(settings.log_level, name)
    start_metrics(name)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(build(settings).run())


def run_service(name: str, body: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> None:
    """Run `body(settings, stop)` until SIGINT/SIGTERM sets `stop`."""
    settings = load_settings()
    setup_logging(settings.log_level, name)
    start_metrics(name)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(settings, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
