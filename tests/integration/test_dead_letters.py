"""Poisoned messages: delivered at most SHOEBOX_CONSUMER_MAX_DELIVER times, then recorded as dead
letters that the API and `shoebox` show, never retried forever (decision 0024)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shared.settings import ConsumerSettings
from shared.work import WORK_ENCODER, ScanTree, scan_work_subject
from tests.factories import make_tree
from tests.helpers import create_user, ok, sign_up_admin
from tests.integration.conftest import World
from tests.integration.test_cli import shoebox
from tests.system import Infra, System, eventually, open_system, run_metadata, run_scanner

pytestmark = pytest.mark.slow

MAX_DELIVER = 3


def _bounded(system: System) -> None:
    """Tight bounds, so a poisoned message is given up on within a second."""
    system.settings = msgspec.structs.replace(
        system.settings, consumer=ConsumerSettings(max_deliver=MAX_DELIVER, backoff=(0.05,))
    )


@pytest.fixture
async def held(infra: Infra, tmp_path: Path) -> AsyncIterator[World]:
    """A World whose scanner is not started yet (the test starts it)."""
    async with open_system(infra, tmp_path) as system:
        _bounded(system)
        media = tmp_path / "media"
        media.mkdir()
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "owner@example.com", str(media))
        yield World(system, media, admin, user)


async def _dead_letters(system: System, admin: dict[str, str]) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = await ok(
        await system.client.get("/api/admin/dead-letters", headers=admin)
    )
    return letters


async def _until_dead(system: System, admin: dict[str, str], n: int) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = []

    async def recorded() -> bool:
        nonlocal letters
        letters = await _dead_letters(system, admin)
        return len(letters) >= n

    await eventually(recorded, 30, f"{n} dead letter(s) in the API")
    return letters


@pytest.mark.parametrize("poison", ["failing", "undecodable"])
async def test_a_folder_task_that_always_fails_is_recorded_and_its_scan_still_finishes(
    held: World, poison: str
) -> None:
    system = held.system
    make_tree(held.media / "a", {"x.jpg": None, "y.jpg": None})
    library = await held.library(held.media / "a")
    r = await system.client.post(f"/api/libraries/{library}/scan", headers=held.admin)
    assert r.status_code == 204, r.text
    scan_id = (
        await ok(await system.client.get(f"/api/libraries/{library}/scan", headers=held.admin))
    )["scanId"]
    # A task of that scan whose folder name PostgreSQL cannot hold: looking up the folder's
    # assets fails (no outage) every time it is tried. Or bytes that are no task at all.
    root = str((held.media / "a").resolve())
    task = ScanTree(
        scan_id=uuid.UUID(scan_id),
        library_id=uuid.UUID(library),
        path=root + "/bad\x00name",
        import_path=root,
    )
    payload = WORK_ENCODER.encode(task) if poison == "failing" else b"\xff not a task"
    js = system.ctx.nc.jetstream()
    await js.publish(
        scan_work_subject(system.settings.nats, scan_id),
        payload,
        stream=system.settings.nats.name("WORK"),
    )
    await system.start("scanner", run_scanner)

    state: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal state
        state = await ok(
            await system.client.get(f"/api/libraries/{library}/scan", headers=held.admin)
        )
        return bool(state["state"] == "finished")

    await eventually(finished, 30, "the scan to finish past its dead folder task")
    assert state["filesSeen"] == 2, state
    [letter] = await _until_dead(system, held.admin, 1)
    assert letter["consumer"] == "scanner-dirs" and letter["stream"] == "WORK", letter
    assert letter["subject"].endswith(f"work.scan.{scan_id}"), letter
    if poison == "failing":
        # The scan's problems name the folder it could not list.
        assert state["failed"] == 1, state
        [problem] = state["problems"]
        assert problem["path"] == root + "/bad\\u0000name", problem
        assert letter["id"] in problem["problem"], problem
        assert letter["deliveries"] == MAX_DELIVER, letter
        assert "invalid byte sequence" in letter["error"], letter
        assert "bad\\u0000name" in letter["payload"], letter
    else:
        assert letter["deliveries"] == 1 and letter["error"].startswith("undecodable"), letter
        assert letter["payload"] == "\ufffd not a task", letter
    # Not retried after that: nothing of the scan is left in WORK.
    info = await js.stream_info(
        system.settings.nats.name("WORK"),
        subjects_filter=scan_work_subject(system.settings.nats, scan_id),
    )
    assert not info.state.subjects, info.state
    # The operator sees it too.
    code, out, err = await shoebox(system, "dead-letters", "--json")
    assert code == 0, err
    [shown] = json.loads(out)
    assert shown["id"] == letter["id"] and shown["deliveries"] == letter["deliveries"], shown
    code, out, err = await shoebox(system, "dead-letters")
    assert code == 0 and "scanner-dirs" in out, (out, err)
    code, out, err = await shoebox(system, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["failures"]["dead_letters"] == 1, out


async def test_an_undecodable_asset_event_is_recorded_at_once_not_retried(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path) as system:
        _bounded(system)
        admin = await sign_up_admin(system)
        await system.start("metadata", run_metadata)
        await system.start("scanner", run_scanner)  # its moves consumer follows asset events
        nats = system.settings.nats
        js = system.ctx.nc.jetstream()
        body = '{"event": "FileDiscovered", "stream_id": 42'
        await js.publish(
            nats.subject("events", "asset", str(uuid.uuid4())),
            body.encode(),
            stream=nats.name("EVENTS"),
        )
        letters = {x["consumer"]: x for x in await _until_dead(system, admin, 2)}
        assert set(letters) == {"metadata", "scanner-moves"}, letters
        for letter in letters.values():
            assert letter["deliveries"] == 1, letter
            assert letter["error"].startswith("undecodable"), letter
            assert letter["payload"] == body, letter
        for durable in letters:
            info = await js.consumer_info(nats.name("EVENTS"), nats.name(durable))
            assert (info.num_ack_pending, info.num_redelivered) == (0, 0), (durable, info)
        # The projector passed it over as well; `status` counts both kinds.
        code, out, err = await shoebox(system, "status", "--json")
        assert code == 0, err
        assert json.loads(out)["failures"] == {"dead_letters": 2, "passed_over": 1}, out
        code, out, err = await shoebox(system, "status")
        assert code == 0 and "dead letters: 2" in out and "passed over: 1" in out, out


async def test_dead_letters_are_for_admins_only(world: World) -> None:
    _, login = await create_user(world.system, world.admin, "other@example.com")
    r = await world.system.client.get("/api/admin/dead-letters", headers=login)
    assert r.status_code == 403, r.text
    assert await _dead_letters(world.system, world.admin) == []
