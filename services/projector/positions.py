"""Every event on an aggregate's subject moves that aggregate's read-model position.

The API guards each write with JetStream's expected-last-subject-sequence against the row's
`last_seq` (services/api/commands/), so a row must hold the sequence of the newest event on
its subject, whatever that event is: one a projection forgot, one it cannot apply, one this
version cannot even decode. Rather than each projection copying the position by hand, the
projector sets it here, from the subject each message was stored under, in the transaction
that moves the checkpoint (decision 0022). A projection that writes the row anyway may set
`last_seq` as part of that write; the update below then finds nothing to do (`last_seq <
:seq`), so a batch of FileDiscovered costs one index probe per asset, not a second row version.

The server aggregate has no row of its own (its one command publishes with expected 0), and the
scan bookkeeping on `events.scans.<library>` is never guarded, so neither has a position.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import TextClause, text

from services.projector.projections.base import set_form
from shared import events as ev

__all__ = ["POSITIONED", "SET_BASED", "aggregate_of", "position_ops"]

POSITIONED: dict[ev.Aggregate, str] = {
    ev.Aggregate.USER: "users",
    ev.Aggregate.LIBRARY: "libraries",
    ev.Aggregate.ASSET: "assets",
    ev.Aggregate.ALBUM: "albums",
    ev.Aggregate.FOLDER: "folders",
}
"""The aggregates whose read-model row carries `last_seq`, and the table of that row."""

_ADVANCE = {
    aggregate: text(f"UPDATE {table} SET last_seq = :seq WHERE id = :id AND last_seq < :seq")
    for aggregate, table in POSITIONED.items()
}
# A batch of events that set no position themselves moves many rows: one statement each kind.
SET_BASED = {stmt: set_form(stmt, {"id": "uuid", "seq": "bigint"}) for stmt in _ADVANCE.values()}


# A removed asset has no row, but its subject goes on (a reading that finished after the
# removal): its tombstone keeps the subject's newest sequence, which an asset born again in a
# FilesDiscovered starts from (decision 0030). One statement per batch, on a small table.
_TOMBSTONES = text(
    "UPDATE asset_tombstones t SET last_seq = v.seq "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS bigint[])) AS v(id, seq) "
    "WHERE t.id = v.id AND t.last_seq < v.seq"
)

_AGGREGATES = {a.value: a for a in POSITIONED}


def aggregate_of(subject: str) -> tuple[ev.Aggregate, uuid.UUID] | None:
    """(aggregate, id) of `[<namespace>.]events.<aggregate>.<id>`, or None."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[-3] != "events":
        return None
    try:
        return ev.Aggregate(parts[-2]), uuid.UUID(parts[-1])
    except ValueError:
        return None


def position_ops(
    messages: Iterable[tuple[int, str, ev.BaseEvent | None]], positioned: set[int] | None = None
) -> list[tuple[TextClause, list[dict[str, Any]]]]:
    """For (seq, subject, decoded event or None) of a batch's messages: one statement per
    aggregate kind, setting each row it names to the newest sequence of that row's subject in
    the batch. Run after the batch's projections (a row created in the batch exists by then).

    A sequence in `positioned` (its projection set the row's `last_seq` itself: plan()) needs
    nothing more when the event was stored on its own aggregate's subject."""
    newest: dict[tuple[ev.Aggregate, uuid.UUID], int] = {}
    assets: dict[uuid.UUID, int] = {}
    for seq, subject, event in messages:
        head, _, tail = subject.rpartition(".")
        aggregate = _AGGREGATES.get(head.rpartition(".")[2])
        if aggregate is None or not head.endswith("events." + aggregate.value):
            continue
        if event is not None and event.aggregate is aggregate:
            row = event.stream_id
        else:
            try:
                row = uuid.UUID(tail)
            except ValueError:
                continue
        if aggregate is ev.Aggregate.ASSET and assets.get(row, 0) < seq:
            assets[row] = seq
        own = event is not None and event.aggregate is aggregate
        if own and positioned is not None and seq in positioned:
            continue
        key = (aggregate, row)
        if newest.get(key, 0) < seq:
            newest[key] = seq
    out: list[tuple[TextClause, list[dict[str, Any]]]] = []
    for aggregate, stmt in _ADVANCE.items():
        rows = [{"seq": s, "id": i} for (a, i), s in newest.items() if a is aggregate]
        if rows:
            out.append((stmt, rows))
    if assets:
        out.append((_TOMBSTONES, [{"ids": list(assets), "seqs": list(assets.values())}]))
    return out
