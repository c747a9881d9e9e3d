"""An isolated Shoebox system on the session's real NATS and PostgreSQL, for one test."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from services.api.app import build_app, close_context, open_context
from services.api.context import Context
from services.metadata.app import serve as serve_metadata
from services.projector.app import Projector
from services.scanner.app import serve as serve_scanner
from shared.bus import connect
from shared.db import create_engine, create_schema
from shared.infra import free_port, start_nats, start_postgres
from shared.pg import close_pool, create_pool
from shared.settings import Settings, load_settings


@dataclass
class Infra:
    nats_url: str
    pg_uri: str
    root: Path


@contextlib.contextmanager
def embedded_infra(prefix: str = "sbt-") -> Iterator[Infra]:
    """A real nats-server and PostgreSQL in a fresh temp folder, stopped and removed after."""
    # Short absolute paths: PostgreSQL's socket lives in its data dir (limit ~100 chars).
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    port = free_port()
    nats = start_nats(root / "nats", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server, uri = start_postgres(root / "pg", cleanup_mode="stop")
    try:
        yield Infra(nats_url=f"nats://127.0.0.1:{port}", pg_uri=uri, root=root)
    finally:
        nats.terminate()
        nats.wait(10)
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def database_url(pg_uri: str, name: str) -> str:
    """The same server, another database."""
    head, _, query = pg_uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}?{query}"


async def create_database(infra: Infra, name: str) -> str:
    conn = await asyncpg.connect(infra.pg_uri)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(infra.pg_uri, name)


def system_settings(infra: Infra, namespace: str, db_url: str, data_dir: Path) -> Settings:
    return load_settings(
        {
            "SHOEBOX_NATS_URL": infra.nats_url,
            "SHOEBOX_NAMESPACE": namespace,
            "SHOEBOX_DATABASE_URL": db_url,
            "SHOEBOX_DATA": str(data_dir),
            "SHOEBOX_RYW_TIMEOUT": "10",
            "SHOEBOX_LOG_LEVEL": "WARNING",
            # Test files are written just before they are read: record failures at once
            # (tests of the settle time set their own).
            "SHOEBOX_METADATA_SETTLE": "0",
            # Services run in the test's event loop serve no health port (tests that probe
            # one run the service as a process with a free port).
            "SHOEBOX_HEALTH_PORT": "0",
        }
    )


def env_for(settings: Settings) -> dict[str, str]:
    """Environment variables that point a service process at this system."""
    return {
        "SHOEBOX_NATS_URL": settings.nats.url,
        "SHOEBOX_NAMESPACE": settings.nats.namespace,
        "SHOEBOX_DATABASE_URL": settings.db.url,
        "SHOEBOX_DATA": settings.data_dir,
        "SHOEBOX_LOG_LEVEL": "WARNING",
        "SHOEBOX_METADATA_SETTLE": str(settings.metadata_settle),
        "SHOEBOX_HEALTH_PORT": "0",
    }


@dataclass
class System:
    """What a test drives: an HTTP client on the API, and the pieces behind it."""

    settings: Settings
    ctx: Context
    client: httpx.AsyncClient
    infra: Infra
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    stops: dict[str, asyncio.Event] = field(default_factory=dict)
    pool: asyncpg.Pool | None = None

    async def db(self) -> asyncpg.Pool:
        """asyncpg's pool on the read models, as the scanner reads them (shared/pg.py)."""
        if self.pool is None:
            self.pool = await create_pool(self.settings.db.url)
        return self.pool

    async def start(
        self, name: str, body: Callable[[Settings, asyncio.Event], Awaitable[None]]
    ) -> None:
        """Run a service's `serve(settings, stop)` in this event loop."""
        stop = asyncio.Event()
        self.stops[name] = stop
        self.tasks[name] = asyncio.create_task(body(self.settings, stop), name=name)

    async def stop(self, name: str) -> None:
        self.stops[name].set()
        task = self.tasks.pop(name)
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            task.cancel()
        self.stops.pop(name)

    async def stop_all(self) -> None:
        for name in list(self.tasks):
            await self.stop(name)


async def run_projector(settings: Settings, stop: asyncio.Event) -> None:
    nc = await connect(settings.nats, "projector-test")
    engine = create_engine(settings.db.url)
    try:
        await Projector(nc, engine, settings.nats).run(stop)
    finally:
        await nc.drain()
        await engine.dispose()


async def run_scanner(settings: Settings, stop: asyncio.Event) -> None:
    """A scanner replica without the nightly job (tests start their scans themselves)."""
    await serve_scanner(settings, stop, nightly=False)


async def run_metadata(settings: Settings, stop: asyncio.Event) -> None:
    """A metadata replica with two worker processes."""
    await serve_metadata(settings, stop, workers=2)


@contextlib.asynccontextmanager
async def open_system(
    infra: Infra, tmp_path: Path, *, projector: bool = True
) -> AsyncIterator[System]:
    namespace = "t" + uuid.uuid4().hex[:10]
    db_url = await create_database(infra, namespace)
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    settings = system_settings(infra, namespace, db_url, data_dir)
    ctx = await open_context(settings)
    await create_schema(ctx.engine)
    app = build_app(settings, ctx)
    # In this event loop (Litestar's AsyncTestClient runs the app on another thread's loop,
    # where the NATS and PostgreSQL connections opened here cannot be used).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://shoebox.test", timeout=60
    ) as client:
        system = System(settings=settings, ctx=ctx, client=client, infra=infra)
        if projector:
            await system.start("projector", run_projector)
        try:
            yield system
        finally:
            await system.stop_all()
            if system.pool is not None:
                await close_pool(system.pool)
            await close_context(ctx)


async def eventually(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Wait until `predicate()` is true, polling; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)  # a poll interval, not a wait for an outcome
