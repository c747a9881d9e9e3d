"""What every projection returns: SQL operations, and scan counters to add at a batch's end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import TextClause, text

__all__ = ["SCAN_ADD", "Increment", "Op", "Projection", "scan_inc"]

Op = tuple[TextClause, dict[str, Any]]


class Increment(NamedTuple):
    """Add `n` (one) to a scan counter. Increments commute, so a batch sums them and applies each
    counter once at its end: runs of FileDiscovered then group into a single executemany."""

    column: str
    scan_id: Any
    n: int = 1


Projection = Callable[[Any, int], list[Op | Increment]]

SCAN_ADD = {
    name: text(f"UPDATE scan_runs SET {name} = {name} + :n WHERE id = :id")
    for name in ("new", "changed", "missing", "failed")
}


def scan_inc(name: str, scan_id: Any, n: int = 1) -> list[Op | Increment]:
    """The counter to add `n` to, when the event belongs to a scan."""
    return [Increment(name, scan_id, n)] if scan_id is not None else []
