"""Who caused what: the actor and correlation id of the work in hand, on events and log lines.

They travel as NATS headers of each event (`Shoebox-Actor`, `Shoebox-Correlation-Id`), not as
event fields, so no event's shape changes; `shoebox events show` reads them back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

ACTOR_HEADER = "Shoebox-Actor"
CORRELATION_HEADER = "Shoebox-Correlation-Id"

# The process's own name ("scanner", "watcher", "cli") unless work on behalf of someone else
# (an API user, a scan) is in hand.
_default_actor = "shoebox"
actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


def set_process_actor(name: str) -> None:
    """The actor of everything this process does on its own behalf."""
    global _default_actor
    _default_actor = name


def current_actor() -> str:
    return actor.get() or _default_actor


def new_correlation_id() -> str:
    return uuid.uuid4().hex[:8]


@contextmanager
def acting(who: str, correlation: str | None = None) -> Iterator[None]:
    """Work done in this block is `who`'s (and carries `correlation`, when given)."""
    a = actor.set(who)
    c = correlation_id.set(correlation) if correlation is not None else None
    try:
        yield
    finally:
        actor.reset(a)
        if c is not None:
            correlation_id.reset(c)


def event_headers() -> dict[str, str]:
    """The headers that say who caused an event being published now."""
    headers = {ACTOR_HEADER: current_actor()}
    cid = correlation_id.get()
    if cid:
        headers[CORRELATION_HEADER] = cid
    return headers


class TraceFilter(logging.Filter):
    """Puts the actor and correlation id on every record (for the formats below)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.actor = current_actor()
        record.correlation_id = correlation_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, service, logger, message, actor, correlation id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "actor": getattr(record, "actor", current_actor()),
        }
        cid = getattr(record, "correlation_id", None) or correlation_id.get()
        if cid and cid != "-":
            line["correlation_id"] = cid
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)
