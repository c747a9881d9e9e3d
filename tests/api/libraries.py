"""Helpers of the library API tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import create_user, ok, sign_up_admin
from tests.system import System

UNKNOWN = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


async def setup_user(
    system: System, media: Path
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    admin = await sign_up_admin(system)
    user, headers = await create_user(system, admin, "user@example.com", str(media))
    return admin, user, headers


async def validate(
    system: System, headers: dict[str, str], lib: str, paths: list[str]
) -> list[dict[str, Any]]:
    body = await ok(
        await system.client.post(
            f"/api/libraries/{lib}/validate", headers=headers, json={"importPaths": paths}
        )
    )
    return body["importPaths"]  # type: ignore[no-any-return]
