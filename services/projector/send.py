"""The projections' `:name` statements sent through asyncpg: per row, or a run as one statement."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from services.projector.positions import SET_BASED as POSITIONS_SET_BASED
from services.projector.projections import SET_BASED as PROJECTIONS_SET_BASED

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy import TextClause

__all__ = ["SET_BASED", "SET_BASED_MIN", "positional", "rows_of", "send"]

SET_BASED: dict[TextClause, TextClause] = {**PROJECTIONS_SET_BASED, **POSITIONS_SET_BASED}
"""Per-row statements -> their set-based form (services/projector/projections/base.py)."""

SET_BASED_MIN = 4
"""Runs shorter than this are sent per row: the same cost either way, and one plan less."""

_BIND = re.compile(r"(?<![:\w]):(\w+)")


@functools.cache
def positional(stmt: TextClause) -> tuple[str, tuple[str, ...]]:
    """A projection's `:name` SQL as asyncpg's `$n` SQL, and the names in `$n` order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _BIND.sub(number, stmt.text), tuple(names)


@functools.cache
def _row_getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """params dict -> the tuple of its values in `names` order (one C call a row)."""
    if len(names) == 1:
        get = operator.itemgetter(names[0])
        return lambda params: (get(params),)
    return operator.itemgetter(*names)


def rows_of(stmt: TextClause, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """asyncpg's SQL of `stmt` and its executemany arguments."""
    sql, names = positional(stmt)
    return sql, list(map(_row_getter(names), rows))


_JSON = msgspec.json.Encoder()


def document_of(form: TextClause, rows: list[dict[str, Any]]) -> tuple[str, str]:
    """asyncpg's SQL of a set-based `form` and its one argument: the rows as a JSON array."""
    sql, _ = positional(form)
    return sql, _JSON.encode(rows).decode()


async def send(raw: asyncpg.Connection, stmt: TextClause, rows: list[dict[str, Any]]) -> None:
    """Apply `rows` of `stmt` on `raw`: as one set-based statement when `stmt` declares one and
    the run is long enough, else with executemany (one execution of `stmt` per row)."""
    form = SET_BASED.get(stmt)
    # The set form joins each row to its parameters by id: two parameter rows for one id would
    # update it once, with either. plan() never puts one row twice in a run, but should it
    # ever, executemany keeps their order.
    if (
        form is not None
        and len(rows) >= SET_BASED_MIN
        and len({params["id"] for params in rows}) == len(rows)
    ):
        await raw.execute(*document_of(form, rows))
    else:
        await raw.executemany(*rows_of(stmt, rows))
