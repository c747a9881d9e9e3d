"""Projections: one pure function per event, turning it into SQL operations on the read models.

A projection never reads: it returns (statement, params) pairs, so consecutive operations that
share a statement can be sent as one executemany (replay speed), and a projection can be tested
with plain values. Every statement is an idempotent upsert or a guarded update keyed by
deterministic ids, so applying an event twice changes nothing. One module per aggregate
(users, libraries, assets, albums, dead letters) holds its statements and projections; this
one joins them and plans a batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause

from services.projector.projections import albums, assets, deadletters, libraries, users
from services.projector.projections.base import SCAN_ADD, Increment, Op, Projection
from shared import events as ev

__all__ = ["BARRIERS", "PROJECTIONS", "SET_BASED", "Increment", "Op", "Projection", "plan"]

PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {
    **users.PROJECTIONS,
    **libraries.PROJECTIONS,
    **assets.PROJECTIONS,
    **albums.PROJECTIONS,
    **deadletters.PROJECTIONS,
}

_missing = set(ev.EVENT_TYPES) - set(PROJECTIONS)
if _missing:  # checked at import: every event in the union has exactly one projection
    raise RuntimeError(f"events without a projection: {sorted(t.__name__ for t in _missing)}")

# Statements that touch rows of several aggregates: everything planned before them runs first.
BARRIERS = libraries.BARRIERS | albums.BARRIERS | assets.BARRIERS

# Per-row statements that also have a set-based form, for long runs (base.set_form).
SET_BASED: dict[TextClause, TextClause] = {**assets.SET_BASED}


def _key(stmt: TextClause, params: dict[str, Any]) -> Any:
    """The row an operation touches: the user for sessions and API keys (they reference it),
    else its id. None for a barrier."""
    if stmt in BARRIERS:
        return None
    return params.get("user_id", params.get("id"))


_SETS_POSITION: dict[TextClause, bool] = {}


def _sets_position(stmt: TextClause) -> bool:
    """The statement writes `last_seq` from the event's sequence (its own row's position)."""
    known = _SETS_POSITION.get(stmt)
    if known is None:
        known = _SETS_POSITION[stmt] = "last_seq" in stmt.text and ":seq" in stmt.text
    return known


def plan(
    events: list[tuple[int, ev.BaseEvent]], positioned: set[int] | None = None
) -> list[tuple[TextClause, list[dict[str, Any]]]]:
    """Turn a batch of (seq, event) into statements for executemany.

    Operations on different rows commute, so each is given a level: one more than the last
    operation on the same row. Levels run in order and, inside a level, operations that share a
    statement run together; the order of operations on any one row is kept. An operation that
    spans rows (deleting a library's assets, album membership) is a barrier: everything before
    it runs first. Scan counters are summed and applied last.

    With `positioned`, the sequence of every event whose own statements set its row's
    `last_seq` is added to it: services/projector/positions.py need not set those again.
    """
    out: list[tuple[TextClause, list[dict[str, Any]]]] = []
    levels: list[dict[TextClause, list[dict[str, Any]]]] = []
    row_level: dict[Any, int] = {}
    increments: dict[tuple[str, Any], int] = {}

    def flush() -> None:
        for level in levels:
            out.extend(level.items())
        levels.clear()
        row_level.clear()

    for seq, event in events:
        for op in PROJECTIONS[type(event)](event, seq):
            if isinstance(op, Increment):
                key = (op.column, op.scan_id)
                increments[key] = increments.get(key, 0) + op.n
                continue
            stmt, params = op
            if (
                positioned is not None
                and params.get("id") == event.stream_id
                and params.get("seq") == seq
                and _sets_position(stmt)
            ):
                positioned.add(seq)
            key = _key(stmt, params)
            if key is None:
                flush()
                if out and out[-1][0] is stmt:
                    out[-1][1].append(params)
                else:
                    out.append((stmt, [params]))
                continue
            level = row_level.get(key, -1) + 1
            row_level[key] = level
            if level == len(levels):
                levels.append({})
            levels[level].setdefault(stmt, []).append(params)
    flush()
    for column in SCAN_ADD:
        rows = [{"id": i, "n": n} for (c, i), n in increments.items() if c == column]
        if rows:
            out.append((SCAN_ADD[column], rows))
    return out
