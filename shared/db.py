"""Engine creation and schema management for the read-model database."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared.schema import metadata


def sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and give the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def create_engine(url: str, *, pool: bool = True) -> AsyncEngine:
    """An async engine on asyncpg; NullPool where connections must not outlive a test."""
    kwargs: dict[str, object] = {} if pool else {"poolclass": NullPool}
    if pool:
        # Pre-ping: a connection left stale by a PostgreSQL restart is replaced on checkout
        # instead of failing the first request after the restart (about 0.1 ms a checkout).
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    return create_async_engine(sqlalchemy_url(url), **kwargs)


async def create_schema(engine: AsyncEngine) -> None:
    """Create every read-model table that does not exist yet."""
    async with engine.begin() as conn:
        # Several services may start at once: one creates, the others wait and find it done.
        await conn.execute(text("SELECT pg_advisory_xact_lock(5150)"))
        await conn.run_sync(metadata.create_all)


async def drop_schema(engine: AsyncEngine) -> None:
    """Drop every read-model table (replay rebuilds them)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


def like_prefix(path: str) -> str:
    """A LIKE pattern for everything below `path` (LIKE's wildcards in the path escaped)."""
    escaped = path.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"
