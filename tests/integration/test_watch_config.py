"""Watching configured like Immich (system-config `library`), and driven by events."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tests.factories import make_tree
from tests.helpers import ok
from tests.integration.test_watcher import QUIET, WatchWorld, _watcher, open_world
from tests.system import Infra, eventually

ENV_DEFAULTS = {
    "scan": {"enabled": True, "cronExpression": "0 0 * * *"},
    "watch": {"enabled": False, "usePolling": False, "interval": 10000},
}


async def config(world: WatchWorld, **library: object) -> dict[str, object]:
    r = await world.system.client.put(
        "/api/system-config", headers=world.admin, json={"library": library, "ffmpeg": {}}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def imported(world: WatchWorld, library_id: str, path: Path, what: str) -> None:
    async def found() -> bool:
        return await world.asset(library_id, path) is not None

    await eventually(found, 15, what)


class TestSystemConfig:
    async def test_defaults_come_from_the_environment_and_edits_are_kept(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            client, admin = world.system.client, world.admin
            got = await ok(await client.get("/api/system-config", headers=admin))
            assert got == {"library": ENV_DEFAULTS}
            library = {
                "scan": {"enabled": False, "cronExpression": "30 3 * * *"},
                "watch": {"enabled": True, "usePolling": True, "interval": 5000},
            }
            assert await config(world, **library) == {"library": library}
            assert await ok(await client.get("/api/system-config", headers=admin)) == {
                "library": library
            }
            defaults = await ok(await client.get("/api/system-config/defaults", headers=admin))
            assert defaults == {"library": ENV_DEFAULTS}

    async def test_bad_values_and_non_admins_are_refused(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            client = world.system.client
            r = await client.put(
                "/api/system-config",
                headers=world.admin,
                json={"library": {"scan": {"cronExpression": "every night"}}},
            )
            assert r.status_code == 400
            assert "cronExpression" in str(r.json()["message"])
            user = await ok(
                await client.post(
                    "/api/auth/login",
                    json={"email": "owner@example.com", "password": "pw-owner@example.com"},
                ),
                201,
            )
            headers = {"Authorization": f"Bearer {user['accessToken']}"}
            for method in ("GET", "PUT"):
                r = await client.request(method, "/api/system-config", headers=headers, json={})
                assert r.status_code == 403, method


class TestEventDrivenWatching:
    async def test_watching_switched_on_at_run_time_imports_without_a_scan(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            settings = world.settings
            off = msgspec.structs.replace(
                settings, scan=msgspec.structs.replace(settings.scan, watch_enabled=False)
            )
            await world.system.start(
                "watcher", _watcher(off, quiet=QUIET, reload_every=3600.0)
            )  # the periodic read never comes: only the configuration event can
            (world.media / "lib").mkdir()
            lib = await world.library(world.media / "lib")
            await config(world, watch={"enabled": True})
            await world.watching(lib, world.media / "lib")
            new = make_tree(world.media / "lib", {"later.jpg": None})["later.jpg"]
            await imported(world, lib, new, "a file written once watching was switched on")

    async def test_new_library_is_watched_at_once_and_caught_up(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            await world.system.start(
                "watcher", _watcher(world.settings, quiet=QUIET, reload_every=3600.0)
            )
            # Written before the library exists, so before any watch: the catch-up scan.
            early = make_tree(world.media / "lib", {"early.jpg": None})["early.jpg"]
            lib = await world.library(world.media / "lib")
            await imported(world, lib, early, "the catch-up scan of a newly watched library")
            await world.watching(lib, world.media / "lib")
