"""Every Shoebox session plans a prepared statement for its parameters (decision 0037): a plan
kept from while the read model was small, before its first ANALYZE, must not scan `assets`
whole for a folder prefix once it holds a library."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy import text

from shared.db import create_engine, create_schema
from shared.pg import close_pool, create_pool, like_prefix
from tests.system import Infra, create_database

# A prefix read as the scanner asks it (services/scanner/repository.py: online_children).
CHILDREN = "SELECT count(*) FROM assets WHERE library_id = $1 AND dir LIKE $2 AND NOT is_offline"


async def _plan_after_runs(conn: asyncpg.Connection) -> str:
    """The plan of the statement's seventh run, after six on an empty table: past the five
    custom plans after which PostgreSQL may settle on a generic one."""
    await conn.execute(f"PREPARE children(uuid, text) AS {CHILDREN}")
    library = uuid.uuid4()  # EXECUTE takes literals only

    def run(folder: str) -> str:
        return f"EXECUTE children('{library}', '{like_prefix(folder)}')"

    for i in range(6):
        await conn.fetchval(run(f"/photos/{i}"))
    rows = await conn.fetch("EXPLAIN " + run("/photos"))
    await conn.execute("DEALLOCATE children")
    return "\n".join(r[0] for r in rows)


async def test_the_pool_and_the_engine_plan_each_run_for_its_parameters(infra: Infra) -> None:
    url = await create_database(infra, "plans" + uuid.uuid4().hex[:8])
    engine = create_engine(url, pool=False)
    try:
        await create_schema(engine)
        async with engine.connect() as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
            raw = await conn.get_raw_connection()
            engine_plan = await _plan_after_runs(raw.driver_connection)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
    pool = await create_pool(url)
    try:
        async with pool.acquire() as conn:
            pool_plan = await _plan_after_runs(conn)
    finally:
        await close_pool(pool)
    for plan in (engine_plan, pool_plan):
        # A generic plan shows its parameters ($1, $2); a custom one the values it was made for.
        assert "$2" not in plan and "/photos/%" in plan, plan
    assert mode == "force_custom_plan"
