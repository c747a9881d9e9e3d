"""An outage of PostgreSQL or NATS told apart from a real fault, and logged once.

A service that meets a database restart or a NATS reconnect retries the same work later; its
log says so once at WARNING with the cause, keeps quiet (DEBUG) while the outage lasts, and
says at INFO when the dependency is back and how long it was gone. A real fault (a bug, a bad
event) is still logged at ERROR with its traceback by the caller.
"""

from __future__ import annotations

import logging
import time

import asyncpg
from nats import errors as nats_errors
from nats.js import errors as js_errors

# What PostgreSQL (or the way to it) raises when it is unavailable rather than when an event is
# wrong: connection lost or refused (08, OSError), shut down or restarting (57), out of
# resources (53), a system error (58), a deadlock or serialization failure (40).
_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.PostgresSystemError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.InterfaceError,
    asyncpg.exceptions._base.InternalClientError,  # a connection left mid-operation by a cut
    OSError,
)

# What nats-py raises while the server is gone or JetStream is not back yet after a restart.
_NATS_DOWN: tuple[type[BaseException], ...] = (
    nats_errors.TimeoutError,
    nats_errors.ConnectionClosedError,
    nats_errors.ConnectionReconnectingError,
    nats_errors.NoServersError,
    nats_errors.NoRespondersError,
    nats_errors.StaleConnectionError,
    nats_errors.OutboundBufferLimitError,
    nats_errors.UnexpectedEOF,
    js_errors.ServiceUnavailableError,
    js_errors.NoStreamResponseError,  # a stream electing its leader
)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and all(exc is not e for e in seen):
        seen.append(exc)
        exc = getattr(exc, "orig", None) or exc.__cause__
    return seen


def database_down(exc: BaseException | None) -> bool:
    """Whether an error (or what it wraps) says the database is unavailable, not the event."""
    return any(
        isinstance(e, _DOWN) or getattr(e, "connection_invalidated", False) for e in _chain(exc)
    )


def nats_down(exc: BaseException | None) -> bool:
    """Whether an error (or what it wraps) says NATS is unreachable for the moment."""
    return any(isinstance(e, _NATS_DOWN) for e in _chain(exc))


def unavailable(exc: BaseException) -> str | None:
    """NATS or PostgreSQL (its name) when exc is that dependency being away; None for a real
    fault. NATS is asked first: nats-py's TimeoutError is also an OSError, which on the
    database's side means a lost connection."""
    if nats_down(exc):
        return "NATS"
    if database_down(exc):
        return "PostgreSQL"
    return None


class Outage:
    """Logs an outage once: WARNING with the cause when it begins, DEBUG while it lasts, INFO
    with its length when the work gets through again. A dependency that flaps (connections cut
    again and again) is one outage until it has stayed up for QUIET seconds."""

    QUIET = 60.0

    def __init__(self, log: logging.Logger, service: str) -> None:
        self.log = log
        self.service = service
        self.since: float | None = None
        self.warned: float | None = None
        self.what = ""

    def failed(self, what: str, exc: BaseException, doing: str) -> None:
        """`doing` failed because `what` is unavailable; the caller retries it later."""
        now = time.monotonic()
        if self.since is None:
            self.since, self.what = now, what
        if self.warned is None or now - self.warned > self.QUIET:
            self.log.warning(
                "%s: %s unavailable (%s: %s); retrying %s and what follows until it is back",
                self.service,
                what,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                doing,
            )
        else:
            self.log.debug("%s: %s still unavailable; retrying %s", self.service, what, doing)
        self.warned = now

    def recovered(self) -> None:
        """Work got through: the end of an outage, if there was one."""
        if self.since is None:
            return
        level = logging.INFO
        if self.warned is not None and time.monotonic() - self.warned < 1.0:
            level = logging.DEBUG  # flapping: said once when it has been up a while
        self.log.log(
            level,
            "%s: %s is back after %.1f s",
            self.service,
            self.what,
            time.monotonic() - self.since,
        )
        self.since = None
