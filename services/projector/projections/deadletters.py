"""Dead letters: messages a consumer gave up on, kept for admins (decision 0024)."""

from __future__ import annotations

from sqlalchemy import text

from services.projector.projections.base import Increment, Op, Projection
from shared import events as ev
from shared.pg import storable

__all__ = ["PROJECTIONS"]

_DEAD_LETTER = text(
    "INSERT INTO dead_letters "
    "(id, consumer, stream, subject, stream_seq, deliveries, error, payload, failed_at) "
    "VALUES (:id, :consumer, :stream, :subject, :stream_seq, :deliveries, :error, :payload, :at) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_delivery_failed(e: ev.DeliveryFailed, seq: int) -> list[Op | Increment]:
    return [
        (
            _DEAD_LETTER,
            {
                "id": e.stream_id,
                "consumer": e.consumer,
                "stream": e.stream,
                "subject": storable(e.subject),
                "stream_seq": e.stream_seq,
                "deliveries": e.deliveries,
                "error": storable(e.error),
                "payload": storable(e.payload),
                "at": e.occurred_at,
            },
        )
    ]


PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {ev.DeliveryFailed: apply_delivery_failed}
