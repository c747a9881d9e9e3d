"""Messages a consumer gave up on (decision 0024)."""

from __future__ import annotations

from shared.events.base import Aggregate, BaseEvent


class DeliveryFailed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A consumer gave up on a message: it could not be decoded, or it failed for a reason of its
    own on its last allowed delivery (never an outage). Its id comes from the consumer and the
    message's stream sequence, so replicas that race record it once (decision 0024)."""

    aggregate = Aggregate.DEAD_LETTER
    consumer: str
    stream: str
    subject: str
    stream_seq: int
    deliveries: int
    error: str
    payload: str = ""
    """The message's first bytes as text (undecodable bytes replaced)."""
