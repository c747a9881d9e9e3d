"""Bounds on the work one library request can cause: its patterns, its paths, the event loop."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from shared.paths import OVER_BUDGET
from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import System, eventually
from tests.unit.test_glob_bounds import HOSTILE


async def _setup(system: System, media: Path) -> tuple[dict[str, str], dict[str, Any]]:
    admin = await sign_up_admin(system)
    user, _ = await create_user(system, admin, "user@example.com", str(media))
    return admin, user


def _body(r: Any) -> dict[str, Any]:
    """The error body without its correlation id."""
    return {k: v for k, v in r.json().items() if k != "correlationId"}


class TestPatterns:
    async def test_backtracking_pattern_is_refused_with_immichs_400(
        self, system: System, media_root: Path
    ) -> None:
        admin, user = await _setup(system, media_root)
        expected = {
            "message": f"Invalid exclusion pattern {HOSTILE!r}: Exclusion pattern must have at "
            "most 8 extglob groups such as @(a|b)",
            "error": "Bad Request",
            "statusCode": 400,
        }
        r = await system.client.post(
            "/api/libraries",
            headers=admin,
            json={"ownerId": user["id"], "exclusionPatterns": ["**/*.tif", HOSTILE]},
        )
        assert r.status_code == 400 and _body(r) == expected
        lib = await external_library(system, admin, user["id"], [])
        r = await system.client.put(
            f"/api/libraries/{lib['id']}", headers=admin, json={"exclusionPatterns": [HOSTILE]}
        )
        assert r.status_code == 400 and _body(r) == expected
        r = await system.client.post(
            f"/api/libraries/{lib['id']}/validate",
            headers=admin,
            json={"importPaths": [], "exclusionPatterns": [HOSTILE]},
        )
        assert r.status_code == 400 and _body(r) == expected
        got = await ok(await system.client.get(f"/api/libraries/{lib['id']}", headers=admin))
        assert got["exclusionPatterns"] == lib["exclusionPatterns"]


def _heavy_paths(root: Path, count: int) -> list[str]:
    """Import paths that are costly to resolve and valid: each a symlink that goes 680 folders
    down and back up (about an eleventh of a request's lookup budget each)."""
    depth = 680
    (root / "/".join(["d"] * depth)).mkdir(parents=True)
    target = "/".join(["d"] * depth + [".."] * depth)
    paths = []
    for i in range(count):
        (root / f"heavy{i}").symlink_to(target)
        paths.append(str(root / f"heavy{i}"))
    return paths


def _tripwire(root: Path, name: str) -> Path:
    """A symlink to its own folder whose atime moves once somebody reads it (relatime updates
    an atime older than the mtime)."""
    link = root / name
    link.symlink_to(".")
    os.utime(link, (1, 2), follow_symlinks=False)
    return link


def _read(link: Path) -> bool:
    return link.lstat().st_atime > 2


class TestPathWork:
    async def test_paths_past_the_lookup_budget_are_not_checked(
        self, system: System, media_root: Path
    ) -> None:
        admin, user = await _setup(system, media_root)
        heavy = _heavy_paths(media_root, 16)
        lib = await external_library(system, admin, user["id"], [])
        body = await ok(
            await system.client.post(
                f"/api/libraries/{lib['id']}/validate", headers=admin, json={"importPaths": heavy}
            )
        )
        results = body["importPaths"]
        assert [r["importPath"] for r in results] == heavy
        assert results[0]["isValid"] is True
        assert results[-1] == {"importPath": heavy[-1], "isValid": False, "message": OVER_BUDGET}
        expected = {
            "message": f"Invalid import path: {OVER_BUDGET}",
            "error": "Bad Request",
            "statusCode": 400,
        }
        r = await system.client.post(
            "/api/libraries", headers=admin, json={"ownerId": user["id"], "importPaths": heavy}
        )
        assert r.status_code == 400 and _body(r) == expected
        r = await system.client.put(
            f"/api/libraries/{lib['id']}", headers=admin, json={"importPaths": heavy}
        )
        assert r.status_code == 400 and _body(r) == expected

    async def test_ping_answers_while_a_validation_is_resolving_paths(
        self, system: System, media_root: Path
    ) -> None:
        admin, user = await _setup(system, media_root)
        lib = await external_library(system, admin, user["id"], [])
        first, last = _tripwire(media_root, "first"), _tripwire(media_root, "last")
        paths = [str(first), *_heavy_paths(media_root, 7), str(last)]
        validation = asyncio.create_task(
            system.client.post(
                f"/api/libraries/{lib['id']}/validate", headers=admin, json={"importPaths": paths}
            )
        )

        async def started() -> bool:
            return _read(first)

        await eventually(started, 30, "the validation to resolve its first path")
        assert (await ok(await system.client.get("/api/server/ping"))) == {"res": "pong"}
        # The ping was answered after the first path was resolved and before the last one.
        assert not _read(last) and not validation.done()
        results = (await ok(await validation))["importPaths"]
        assert [r["isValid"] for r in results] == [True] * len(paths)
        assert _read(last)
