"""Pure decisions of the API's commands: typed state and a command in, writes or a refusal out.

No awaits, no NATS, no PostgreSQL, no file system: each rule is tested with plain values
(tests/unit/test_decide_*.py). The handlers in services/api/commands/ load the state (the read
models, the path facts from shared/paths.py), call the decision, publish the writes it returns
with the expected sequences it names, and wait for the read models (decision 0025).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from shared.errors import InvalidFields, ShoeboxError

if TYPE_CHECKING:
    from shared import events as ev

__all__ = ["Refusal", "Write", "accepted", "fields_refusal", "invalid_field", "refuse"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Write:
    """Events of one aggregate, published in order: the first expects the aggregate's subject
    sequence `expected` (0: it must be new; None: unguarded), each next one the sequence of the
    one before."""

    events: tuple[ev.BaseEvent, ...]
    expected: int | None


@dataclass(frozen=True)
class Refusal:
    """A command refused: the error class (its Immich status, services/api/errors.STATUS) and
    the message the client reads; `fields` is Immich's list of DTO messages (a 400 whose
    `message` is an array)."""

    error: type[ShoeboxError]
    detail: str
    fields: tuple[str, ...] = ()

    @property
    def status(self) -> int:
        """The HTTP status Immich answers with (services/api/errors.py maps it once)."""
        from services.api.errors import STATUS

        return next((code for cls, code in STATUS.items() if issubclass(self.error, cls)), 400)

    def exception(self) -> ShoeboxError:
        """The error the handler raises."""
        if self.fields:
            return InvalidFields(list(self.fields))
        return self.error(self.detail)


def refuse(error: type[ShoeboxError], detail: str) -> Refusal:
    """A refusal with one message."""
    return Refusal(error, detail)


def fields_refusal(problems: list[str]) -> Refusal | None:
    """Immich's 400 with the list of broken DTO rules, or None when there are none."""
    if not problems:
        return None
    return Refusal(InvalidFields, "; ".join(problems), tuple(problems))


def invalid_field(message: str) -> Refusal:
    """Immich's 400 for one broken DTO rule."""
    return Refusal(InvalidFields, message, (message,))


def accepted(outcome: _T | Refusal) -> _T:
    """For a handler: the decision's answer, or its refusal raised as the error whose Immich
    status services/api/errors.py maps."""
    if isinstance(outcome, Refusal):
        raise outcome.exception()
    return outcome
