"""What every projection returns: SQL operations, and scan counters to add at a batch's end."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import TextClause, text

__all__ = ["SCAN_ADD", "Increment", "Op", "Projection", "scan_inc", "set_form"]

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


_BIND = re.compile(r"(?<![:\w]):(\w+)")


def set_form(stmt: TextClause, types: Mapping[str, str]) -> TextClause:
    """The set-based form of a per-row `UPDATE <table> SET ... WHERE ...` keyed by `:id`.

    A run of the statement (rows of one plan level: one per id) becomes one statement over a
    single parameter, `:rows`: the run's parameter dicts as one JSON array of objects
    (services/projector/send.py encodes it with msgspec, in C). `json_to_recordset` reads each
    object's keys as typed columns (`types` gives each name's PostgreSQL type; a `bytea` travels
    as base64 text and is decoded here), renamed `v._name` so a parameter never shadows a
    column: `coalesce(:file_size, file_size)` keeps taking the row's own file_size. Every other
    word of the statement is kept, so its semantics are the same.
    """
    head, where_kw, where = stmt.text.partition(" WHERE ")
    names = list(dict.fromkeys(_BIND.findall(stmt.text)))
    if not head.startswith("UPDATE ") or not where_kw or " WHERE " in where or "id" not in names:
        raise ValueError(f"not a per-row UPDATE keyed by :id: {stmt.text}")
    untyped = [name for name in names if name not in types]
    if untyped:
        raise ValueError(f"no PostgreSQL type for {untyped} in: {stmt.text}")

    def column(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"decode(v._{name}, 'base64')" if types[name] == "bytea" else f"v._{name}"

    def json_type(name: str) -> str:
        return "text" if types[name] == "bytea" else types[name]

    record = ", ".join(f"{name} {json_type(name)}" for name in names)
    renamed = ", ".join(f"_{name}" for name in names)
    return text(
        f"{_BIND.sub(column, head)} FROM (SELECT * FROM json_to_recordset(CAST(:rows AS json)) "
        f"AS r({record})) AS v({renamed}) WHERE {_BIND.sub(column, where)}"
    )
