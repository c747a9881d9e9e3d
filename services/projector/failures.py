"""Events the projector passes over: recorded in `projection_failures`, their aggregate moved on.

An event that cannot be decoded or applied (a value PostgreSQL cannot store, a newer producer's
shape) must not stall the read models, and must not jam its aggregate either: the API guards
writes with JetStream's expected-last-subject-sequence against the row's `last_seq`, so a row
left behind its subject would refuse every later write with 409. The failure is therefore
recorded and the aggregate's `last_seq` advanced past it (as for every event: positions.py), in
the transaction that moves the checkpoint. Everything written comes from the message alone, so
a replay records the same rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import text

from services.projector.positions import aggregate_of
from shared import events as ev
from shared.pg import storable

if TYPE_CHECKING:
    from sqlalchemy import TextClause

__all__ = ["Failure", "failure_ops"]

_RECORD = text(
    "INSERT INTO projection_failures "
    "(seq, subject, event_type, event_id, stream_id, occurred_at, error) "
    "VALUES (:seq, :subject, :event_type, :event_id, :stream_id, :occurred_at, :error) "
    "ON CONFLICT (seq) DO NOTHING"
)


class Failure(NamedTuple):
    """One passed-over event: what is known of it, and why."""

    seq: int
    subject: str
    error: str
    event: ev.BaseEvent | None = None

    def describe(self) -> str:
        if self.event is None:
            return f"seq={self.seq} subject={self.subject} (undecodable)"
        kind = type(self.event).__name__
        return f"seq={self.seq} subject={self.subject} {kind} event_id={self.event_id()}"

    def event_id(self) -> uuid.UUID | None:
        return self.event.event_id if self.event is not None else None


def failure_ops(failure: Failure) -> list[tuple[TextClause, dict[str, Any]]]:
    """Record the failure (its aggregate's row is moved past it with the rest of the batch:
    services/projector/positions.py)."""
    event = failure.event
    occurred: datetime | None = event.occurred_at if event is not None else None
    target = aggregate_of(failure.subject)
    stream_id = event.stream_id if event is not None else (target[1] if target else None)
    ops: list[tuple[TextClause, dict[str, Any]]] = [
        (
            _RECORD,
            {
                "seq": failure.seq,
                "subject": failure.subject,
                "event_type": type(event).__name__ if event is not None else None,
                "event_id": failure.event_id(),
                "stream_id": stream_id,
                "occurred_at": occurred,
                # PostgreSQL's messages never hold a NUL, but what failed may have: keep it out.
                "error": storable(failure.error),
            },
        )
    ]
    return ops
