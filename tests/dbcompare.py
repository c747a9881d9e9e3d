"""Compare two read-model databases row for row."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.db import sqlalchemy_url
from shared.schema import READ_MODEL_TABLES


def _plain(url: str) -> str:
    return sqlalchemy_url(url).replace("postgresql+asyncpg://", "postgresql://")


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table as a sorted list of row tuples."""
    conn = await asyncpg.connect(_plain(url))
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in READ_MODEL_TABLES:
            rows = await conn.fetch(f'SELECT * FROM "{table}"')
            out[table] = sorted((tuple(r.values()) for r in rows), key=repr)
        return out
    finally:
        await conn.close()


def diff(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Human-readable differences, empty when equal."""
    problems = []
    for table in READ_MODEL_TABLES:
        left, right = a.get(table, []), b.get(table, [])
        if left != right:
            only_left = [r for r in left if r not in right][:3]
            only_right = [r for r in right if r not in left][:3]
            problems.append(
                f"{table}: {len(left)} vs {len(right)} rows; "
                f"only live {only_left}; only replayed {only_right}"
            )
    return problems
