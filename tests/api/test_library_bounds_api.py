"""Bounds on the work one library request can cause: its patterns, its paths, the event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import create_user, external_library, ok, sign_up_admin
from tests.system import System
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
