"""The external-path fence of libraries through the real API: import paths inside a user's
external path after resolving `..` and symlinks, and nothing outside it read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.api.libraries import UNKNOWN, setup_user, validate
from tests.factories import make_tree
from tests.helpers import create_user, external_library, ok
from tests.system import System


class TestFence:
    @pytest.mark.parametrize(
        "make_path",
        [
            lambda m, t: f"{m}/../../etc",
            lambda m, t: "/etc",
            lambda m, t: f"{m}2",
            lambda m, t: f"{m}/link-out",
            lambda m, t: f"{m}/" + "x" * 5000,
            lambda m, t: f"{m}/a\x00b",
            lambda m, t: f"{m}\\photos",
            lambda m, t: f"{m}/..\\..\\etc",
            lambda m, t: "   ",
        ],
        ids=[
            "traversal",
            "absolute-outside",
            "sibling-prefix",
            "symlink-out",
            "5000-chars",
            "nul",
            "backslash",
            "windows-traversal",
            "blank",
        ],
    )
    async def test_paths_outside_or_malformed_are_refused(
        self, system: System, media_root: Path, tmp_path: Path, make_path: Any
    ) -> None:
        (tmp_path / "outside").mkdir()
        (media_root / "link-out").symlink_to(tmp_path / "outside")
        Path(f"{media_root}2").mkdir()
        admin, user, _ = await setup_user(system, media_root)
        bad = make_path(str(media_root), tmp_path)
        r = await system.client.post(
            "/api/libraries", headers=admin, json={"ownerId": user["id"], "importPaths": [bad]}
        )
        assert r.status_code == 400, r.text
        assert r.json()["message"]
        lib = await external_library(system, admin, user["id"], [str(media_root)])
        r = await system.client.put(
            f"/api/libraries/{lib['id']}", headers=admin, json={"importPaths": [bad]}
        )
        assert r.status_code == 400 and r.json()["message"]
        after = await ok(await system.client.get(f"/api/libraries/{lib['id']}", headers=admin))
        assert after["importPaths"] == [str(media_root)]
        # An empty entry is refused by the request's own rules, a NUL by the edge (it could
        # never be stored).
        if not bad.strip() or "\x00" in bad:
            r = await system.client.post(
                f"/api/libraries/{lib['id']}/validate", headers=admin, json={"importPaths": [bad]}
            )
            assert r.status_code == 400
            return
        (result,) = await validate(system, admin, lib["id"], [bad])
        assert result["isValid"] is False and result["message"]

    async def test_non_utf8_path_is_refused(self, system: System, media_root: Path) -> None:
        admin, user, _ = await setup_user(system, media_root)
        raw = b'{"ownerId": "%s", "importPaths": ["%s/\\udcff"]}' % (
            user["id"].encode(),
            str(media_root).encode(),
        )
        r = await system.client.post(
            "/api/libraries", headers={**admin, "content-type": "application/json"}, content=raw
        )
        assert r.status_code == 400
        r = await system.client.post(
            "/api/libraries",
            headers={**admin, "content-type": "application/json"},
            content=b'{"ownerId": "x", "importPaths": ["/a\xff"]}',
        )
        assert r.status_code == 400

    async def test_validate_gives_immichs_messages_in_order(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await setup_user(system, media_root)
        make_tree(media_root, {"photos/a.jpg": None, "file.jpg": None})
        lib = await external_library(system, admin, user["id"], [])
        results = await validate(
            system,
            admin,
            lib["id"],
            [
                str(media_root / "photos"),
                "photos",
                str(media_root / "missing"),
                str(media_root / "file.jpg"),
                "/etc",
            ],
        )
        assert [r["isValid"] for r in results] == [True, False, False, False, False]
        assert "message" not in results[0]
        # Immich's words, with Node's path.resolve(): the API's working folder.
        assert results[1]["message"] == f"Import path must be absolute, try {os.getcwd()}/photos"
        assert results[2]["message"] == "Path does not exist (ENOENT)"
        assert results[3]["message"] == "Not a directory"
        assert "outside" in results[4]["message"]
        assert await validate(system, admin, lib["id"], []) == []

    async def test_changing_the_external_path_takes_effect_at_next_validation(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await setup_user(system, media_root)
        (media_root / "photos").mkdir()
        lib = await external_library(system, admin, user["id"], [str(media_root / "photos")])
        (ok_result,) = await validate(system, admin, lib["id"], [str(media_root / "photos")])
        assert ok_result["isValid"] is True
        await ok(
            await system.client.put(
                f"/api/admin/users/{user['id']}", headers=admin, json={"externalPath": None}
            )
        )
        r = await system.client.post(
            f"/api/libraries/{lib['id']}/validate",
            headers=admin,
            json={"importPaths": [str(media_root / "photos")]},
        )
        assert r.status_code == 400 and r.json()["message"] == "User has no external path set"

    async def test_user_cannot_touch_another_users_library(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _headers = await setup_user(system, media_root)
        _other, other_headers = await create_user(
            system, admin, "other@example.com", str(media_root)
        )
        lib = await external_library(system, admin, user["id"], [str(media_root)])
        # Immich's access checks: 400 `Not found or no <permission> access`, for a library
        # that is someone else's as for one that does not exist (nothing is told apart).
        for library in (lib["id"], UNKNOWN):
            for call, permission in (
                (system.client.get(f"/api/libraries/{library}", headers=other_headers), "read"),
                (
                    system.client.get(
                        f"/api/libraries/{library}/statistics", headers=other_headers
                    ),
                    "read",
                ),
                (
                    system.client.put(
                        f"/api/libraries/{library}", headers=other_headers, json={"name": "x"}
                    ),
                    "update",
                ),
                (
                    system.client.delete(f"/api/libraries/{library}", headers=other_headers),
                    "delete",
                ),
                (
                    system.client.post(f"/api/libraries/{library}/scan", headers=other_headers),
                    "update",
                ),
            ):
                r = await call
                assert r.status_code == 400, r.text
                assert r.json()["message"] == f"Not found or no library.{permission} access"
        assert (await ok(await system.client.get(f"/api/libraries/{lib['id']}", headers=admin)))[
            "name"
        ] == lib["name"]

    async def test_non_admin_cannot_set_an_external_path(
        self, system: System, media_root: Path
    ) -> None:
        _admin, user, headers = await setup_user(system, media_root)
        r = await system.client.put(
            f"/api/admin/users/{user['id']}", headers=headers, json={"externalPath": "/"}
        )
        assert r.status_code == 403
        me = await ok(await system.client.get("/api/users/me", headers=headers))
        assert me["externalPath"] == str(media_root)

    async def test_external_path_must_be_absolute_and_normalised(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await setup_user(system, media_root)
        for bad in ("relative", "/a/../b", "/a//b", "", "/a\x00"):
            r = await system.client.put(
                f"/api/admin/users/{user['id']}", headers=admin, json={"externalPath": bad}
            )
            assert r.status_code == 400, bad
