"""Engine creation and schema management for the read-model database."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex

from shared import folderprints
from shared.pg import SESSION, Scalar, asyncpg_url
from shared.schema import metadata

log = logging.getLogger(__name__)


def sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and give SQLAlchemy's form
    for asyncpg."""
    return "postgresql+asyncpg://" + asyncpg_url(url).removeprefix("postgresql://")


def create_engine(url: str, *, pool: bool = True) -> AsyncEngine:
    """An async engine on asyncpg; NullPool where connections must not outlive a test."""
    # Every session in UTC: a projector's set-based statement carries its rows as JSON text
    # (services/projector/send.py), where a datetime without an offset is read in the session's
    # time zone, and asyncpg's binary parameters take it as UTC; in UTC both read it alike.
    # The API's queries name their time zone (`AT TIME ZONE 'UTC'`) and are unaffected.
    # Custom plans for every prepared statement: shared/pg.py's SESSION says why.
    kwargs: dict[str, object] = {"connect_args": {"server_settings": dict(SESSION)}}
    if pool:
        # Pre-ping: a connection left stale by a PostgreSQL restart is replaced on checkout
        # instead of failing the first request after the restart (about 0.1 ms a checkout).
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    else:
        kwargs["poolclass"] = NullPool
    return create_async_engine(sqlalchemy_url(url), **kwargs)


def scalar(engine: AsyncEngine) -> Scalar:
    """The engine as shared/pg.py's one-value query, for the readers services share."""

    async def query(sql: str) -> object:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()

    return query


DEFERRED_INDEXES = ("assets_library_dir", "assets_owner_taken", "assets_library_checksum")
"""The non-unique indexes of `assets` that a full replay builds once at its end rather than
entry by entry for every row it writes and rewrites (decision 0033)."""


async def create_schema(engine: AsyncEngine) -> None:
    """Create every read-model table, and every index, that does not exist yet.

    An index is looked for on its own: a replay that stopped before building the indexes it
    defers (services/cli/replay.py) leaves tables without them, and the next start builds
    them here."""
    async with engine.begin() as conn:
        # Several services may start at once: one creates, the others wait and find it done.
        await conn.execute(text("SELECT pg_advisory_xact_lock(5150)"))
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_create_missing_indexes)
        await conn.run_sync(folderprints.install)  # after the index its triggers read by


def _create_missing_indexes(conn: Connection) -> None:
    present = set(
        conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        ).scalars()
    )
    for table in metadata.sorted_tables:
        for index in table.indexes:
            if index.name not in present:
                log.info("building the missing index %s of %s", index.name, table.name)
                conn.execute(CreateIndex(index))


async def drop_deferred_indexes(engine: AsyncEngine) -> None:
    """Drop DEFERRED_INDEXES, and the folder-print triggers that read by one of them, for a
    replay into empty tables (create_schema builds them, and fills `folder_prints`)."""
    async with engine.begin() as conn:
        await conn.run_sync(folderprints.drop_triggers)
        for name in DEFERRED_INDEXES:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))


async def schema_ready(engine: AsyncEngine) -> bool:
    """Whether every read-model table exists (the projector creates them in one transaction)."""
    names = [table.name for table in metadata.sorted_tables]
    async with engine.connect() as conn:
        found = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_catalog.pg_tables"
                " WHERE schemaname = current_schema() AND tablename = ANY(:names)"
            ),
            {"names": names},
        )
    return bool(found == len(names))


async def wait_for_schema(engine: AsyncEngine, timeout: float = 300.0, poll: float = 0.5) -> None:
    """Wait until PostgreSQL answers and the projector has created the read-model schema.

    On a first start the API may come up before the projector (or before PostgreSQL): serving
    then would answer a sign-up with 500 (`relation "server_state" does not exist`). Raises
    TimeoutError after `timeout` seconds, so the process exits and its supervisor restarts it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    said = ""
    while True:
        try:
            if await schema_ready(engine):
                if said:
                    log.info("read-model schema found; serving")
                return
            why = "waiting for the projector to create the read-model schema"
        except (OSError, DBAPIError) as exc:
            why = f"waiting for PostgreSQL ({type(exc).__name__}: {exc})"
        if why != said:
            log.warning("%s", why)
            said = why
        if loop.time() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s {why}")
        await asyncio.sleep(poll)  # a poll interval: the schema appears in another process


async def drop_schema(engine: AsyncEngine) -> None:
    """Drop every read-model table (replay rebuilds them)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
