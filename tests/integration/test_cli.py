"""The `shoebox` operator command line against a running test system (real NATS and
PostgreSQL): each command as a process, its output checked."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.factories import make_tree
from tests.helpers import ok
from tests.integration.conftest import World
from tests.system import System, create_database, env_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


async def shoebox(
    system: System, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `python -m services.cli ARGS` against the system; (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, **env_for(system.settings), "COLUMNS": "200", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_libraries_list_and_scan_with_counts(world: World) -> None:
    make_tree(world.media / "a", {f"x{i}.jpg": None for i in range(5)})
    lib = await world.library(world.media / "a", name="Holidays")
    code, out, err = await shoebox(world.system, "libraries", "list", "--json")
    assert code == 0, err
    listed = {x["id"]: x for x in json.loads(out)}
    assert listed[lib]["name"] == "Holidays" and listed[lib]["assets"] == 0
    assert listed[lib]["import_paths"] == [str(world.media / "a")]

    code, out, err = await shoebox(world.system, "libraries", "scan", lib)
    assert code == 0, err
    assert "finished: seen 5, new 5, changed 0, missing 0, failed 0" in out
    code, out, _ = await shoebox(world.system, "libraries", "list")
    assert "Holidays" in out and lib in out
    assert (await world.assets(lib)).keys() == {
        str((world.media / "a" / f"x{i}.jpg").resolve()) for i in range(5)
    }

    make_tree(world.media / "a" / "sub", {"y.jpg": None})
    code, out, err = await shoebox(
        world.system,
        "libraries",
        "scan",
        lib,
        "--mode",
        "force",
        "--path",
        str(world.media / "a" / "sub"),
    )
    assert code == 0, err
    assert "new 1" in out
    code, _, err = await shoebox(world.system, "libraries", "scan", lib, "--path", "/etc")
    assert code == 1 and "scan refused: Invalid path" in err


async def test_events_show_names_who_caused_each_event(world: World) -> None:
    make_tree(world.media / "b", {"p.jpg": None})
    lib = await world.library(world.media / "b")
    await world.scan(lib)
    asset = next(iter((await world.assets(lib)).values()))
    code, out, err = await shoebox(world.system, "events", "show", asset["id"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"asset {asset['id']}: {len(lines) - 1} events"
    # Its birth, stored with its folder's other new files (decision 0030), comes first.
    assert "FilesDiscovered" in lines[1] and "by scan " in lines[1] and "p.jpg" in lines[1]

    code, out, err = await shoebox(world.system, "events", "show", lib)
    assert code == 0, err
    assert "LibraryCreated" in out.splitlines()[1]
    me = await ok(await world.system.client.get("/api/users/me", headers=world.admin))
    assert f"by user {me['id']}" in out.splitlines()[1]
    # The API's correlation id of the request rides on the event.
    assert "LibraryScanRequested" in out and "[" in out

    code, _, err = await shoebox(world.system, "events", "show", "not-an-id")
    assert code == 2 and "is not an id" in err
    code, _, err = await shoebox(
        world.system, "events", "show", "0" * 8 + "-0000-0000-0000-" + "0" * 12
    )
    assert code == 1 and "no events" in err


async def test_events_tail_prints_the_last_events_and_stops(world: World) -> None:
    last = await world.last_seq()
    code, out, err = await shoebox(world.system, "events", "tail", "--last", "3", "--count", "3")
    assert code == 0, err
    seqs = [int(line.split()[0]) for line in out.splitlines()]
    assert seqs == [last - 2, last - 1, last]


async def test_status_shows_streams_consumers_checkpoint_and_services(world: World) -> None:
    make_tree(world.media / "c", {"q.jpg": None})
    await world.scan(await world.library(world.media / "c"))
    code, out, err = await shoebox(world.system, "status", "--json")
    assert code == 0, err
    status: dict[str, Any] = json.loads(out)
    streams = {s["name"]: s for s in status["streams"]}
    events = streams[world.system.settings.nats.name("EVENTS")]
    assert events["messages"] == await world.last_seq()
    assert (
        status["projector"]["checkpoint"] == status["projector"]["last_seq"] == events["last_seq"]
    )
    consumers = {c["name"] for c in status["consumers"]}
    assert world.system.settings.nats.name("scanner-dirs") in consumers
    kinds = {s["kind"] for s in status["services"]}
    assert "scanner" in kinds  # its heartbeat
    assert status["scans"] == []
    code, out, err = await shoebox(world.system, "status")
    assert code == 0, err
    assert "projector: checkpoint" in out and "up to date" in out and "scans running: none" in out


async def test_users_create_admin_once(world: World, tmp_path: Path) -> None:
    # A system with no admin yet: its own database and namespace on the same servers.
    name = "c" + os.urandom(5).hex()
    url = await create_database(world.system.infra, name)
    env = {"SHOEBOX_NAMESPACE": name, "SHOEBOX_DATABASE_URL": url}
    from shared.db import create_engine, create_schema

    engine = create_engine(url, pool=False)
    await create_schema(engine)
    await engine.dispose()
    projector = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.projector",
        cwd=ROOT,
        env={**os.environ, **env_for(world.system.settings), **env},
    )
    try:
        args = ["users", "create-admin", "--email", "root@example.com", "--name", "Root"]
        code, out, err = await shoebox(
            world.system, *args, env={**env, "SHOEBOX_ADMIN_PASSWORD": "s3cret-pass"}
        )
        assert code == 0, err
        assert out.startswith("admin root@example.com created: ")
        code, _, err = await shoebox(
            world.system, *args, env={**env, "SHOEBOX_ADMIN_PASSWORD": "s3cret-pass"}
        )
        assert code == 1 and "already has an admin" in err
    finally:
        projector.terminate()
        await projector.wait()


async def test_replay_compares_row_counts_and_rebuilds_one_asset(world: World) -> None:
    make_tree(world.media / "d", {f"r{i}.jpg": None for i in range(3)})
    lib = await world.library(world.media / "d")
    await world.scan(lib)
    scratch = await create_database(world.system.infra, "s" + os.urandom(5).hex())
    code, out, err = await shoebox(world.system, "replay", "--database-url", scratch)
    assert code == 0, err
    assert "row counts match the live read models" in out
    assert "assets" in out

    asset = next(iter((await world.assets(lib)).values()))
    async with world.system.ctx.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text("UPDATE assets SET original_file_name = 'broken' WHERE id = :i"),
            {"i": asset["id"]},
        )
    code, out, err = await shoebox(world.system, "replay", "--asset", asset["id"])
    assert code == 0, err
    assert out.startswith(f"asset {asset['id']}: rebuilt from ")
    again = (await world.assets(lib))[asset["originalPath"]]
    assert again["originalFileName"] == asset["originalFileName"] != "broken"
    # A live read model that lost a row no longer matches its replay.
    async with world.system.ctx.engine.begin() as conn:
        await conn.execute(text("DELETE FROM assets WHERE id = :i"), {"i": asset["id"]})
    code, out, err = await shoebox(world.system, "replay", "--database-url", scratch)
    assert code == 2 and "row counts differ" in out and "(live: 2)" in out
    _ = await ok(await world.system.client.get("/api/server/ping"))
