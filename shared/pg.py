"""The read-model database over asyncpg alone, for a service whose every query is SQL of its own
(the scanner, decision 0036).

SQLAlchemy's engine and its asyncio layer cost a process about 21 MB of resident memory and
each query a connection checkout with a liveness round trip; the scanner never uses the schema
objects or the ORM they serve. asyncpg's own pool needs neither: a connection PostgreSQL closed
(a restart) is seen closed and replaced when it is next taken, and a query on one that dies
meanwhile fails as an outage (shared/outage.py), after which its task is delivered again.

Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg

Scalar: TypeAlias = Callable[[str], Awaitable[Any]]
"""A query for one value (`asyncpg.Pool.fetchval`, or shared/db.py's `scalar` of an engine):
what the shared readers below a service's own SQL need of its database."""

POOL_SIZE = 20  # the SQLAlchemy engines' 10 + 10 overflow

SESSION = {"TimeZone": "UTC", "plan_cache_mode": "force_custom_plan"}
"""Every Shoebox session's settings (decision 0037). UTC: a set-based statement's rows travel as
JSON text, read in the session's time zone (shared/db.py). Custom plans: asyncpg prepares every
statement, and PostgreSQL keeps a prepared statement's generic plan once five runs found it no
dearer; planned while the read model is still empty (a first import, until autovacuum's first
ANALYZE) it wins, and a generic plan can never use the path index for `dir LIKE $2`, whose
prefix it does not know: it reads every asset of the library for each folder. Planning each run
afresh costs tens of microseconds."""


def asyncpg_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and give asyncpg's form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before another task takes it: a transaction left open rolled
    back. asyncpg's default reset also unlocks, closes cursors, unlistens and resets settings,
    in a round trip per release, for state a reader never makes."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(url: str, *, size: int = POOL_SIZE) -> asyncpg.Pool:
    """A pool that connects when first asked (PostgreSQL may not be up yet), in UTC as every
    Shoebox session is (shared/db.py)."""
    pool = await asyncpg.create_pool(
        asyncpg_url(url),
        min_size=0,
        max_size=size,
        server_settings=dict(SESSION),
        reset=_reset,
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    """Close gracefully, or cut the connections still taken after `timeout` seconds."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()


def like_prefix(path: str) -> str:
    """A LIKE pattern for everything below `path` (LIKE's wildcards in the path escaped)."""
    escaped = path.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def storable(value: str) -> str:
    """Text PostgreSQL can store: it holds no NUL, and what failed may carry one."""
    return value.replace("\x00", "\\u0000")
