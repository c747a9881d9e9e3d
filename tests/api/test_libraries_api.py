"""External libraries through the real API: create, edit, validate, delete."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from shared.globs import DEFAULT_EXCLUSION_PATTERNS
from tests.api.libraries import UNKNOWN, setup_user
from tests.factories import make_tree
from tests.helpers import assets_of, create_user, external_library, ok, scan, sign_up_admin
from tests.system import System, eventually, run_metadata, run_scanner


class TestCreate:
    async def test_admin_creates_for_a_user_with_defaults(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await setup_user(system, media_root)
        lib = await external_library(system, admin, user["id"], [str(media_root)])
        assert lib["ownerId"] == user["id"] and lib["type"] == "EXTERNAL"
        assert lib["name"] == "New External Library"
        assert lib["exclusionPatterns"] == DEFAULT_EXCLUSION_PATTERNS
        assert lib["assetCount"] == 0 and lib["refreshedAt"] is None
        got = await ok(await system.client.get(f"/api/libraries/{lib['id']}", headers=admin))
        assert got == lib

    async def test_nobody_may_use_external_paths_by_default(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        user, headers = await create_user(system, admin, "nopath@example.com")
        r = await system.client.post(
            "/api/libraries",
            headers=headers,
            json={"ownerId": user["id"], "importPaths": [str(media_root)]},
        )
        assert r.status_code == 403
        r = await system.client.post(
            "/api/libraries",
            headers=admin,
            json={"ownerId": user["id"], "importPaths": [str(media_root)]},
        )
        assert r.status_code == 400 and "external path" in r.json()["message"]

    async def test_user_creates_own_library_inside_their_path(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, headers = await setup_user(system, media_root)
        lib = await ok(
            await system.client.post(
                "/api/libraries",
                headers=headers,
                json={
                    "ownerId": user["id"],
                    "name": "Mine",
                    "importPaths": [str(media_root / "later")],
                },
            ),
            201,
        )
        assert lib["importPaths"] == [str(media_root / "later")]  # may not exist yet, as Immich
        r = await system.client.post(
            "/api/libraries",
            headers=headers,
            json={
                "ownerId": (await ok(await system.client.get("/api/users/me", headers=admin)))[
                    "id"
                ],
                "importPaths": [],
            },
        )
        assert r.status_code == 403
        mine = await ok(await system.client.get("/api/libraries", headers=headers))
        assert {lib["type"] for lib in mine} == {"UPLOAD", "EXTERNAL"}
        assert all(lib["ownerId"] == user["id"] for lib in mine)

    @pytest.mark.parametrize(
        "paths, message",
        [
            # DTO rules: Immich's validation pipe answers a list of messages.
            ([""], ["each value in importPaths should not be empty"]),
            (["/a", "/a"], ["All importPaths's elements must be unique"]),
            (["/a", "/a/"], ["All importPaths's elements must be unique"]),  # once normalised
            ([7], ["each value in importPaths must be a string"]),
            ("/a", ["importPaths must be an array"]),
            # A check of the service: one string.
            (["relative/photos"], "Invalid import path: Import path must be absolute, try "),
        ],
    )
    async def test_bad_lists_are_refused(
        self, system: System, media_root: Path, paths: Any, message: str | list[str]
    ) -> None:
        admin, user, _ = await setup_user(system, media_root)
        if isinstance(paths, list):
            paths = [p if not str(p).startswith("/") else str(media_root) + p for p in paths]
        r = await system.client.post(
            "/api/libraries", headers=admin, json={"ownerId": user["id"], "importPaths": paths}
        )
        body = r.json()
        assert r.status_code == 400 and body["error"] == "Bad Request" and body["correlationId"]
        if isinstance(message, list):
            assert body["message"] == message
        else:
            assert isinstance(body["message"], str) and body["message"].startswith(message)
        assert len(await ok(await system.client.get("/api/libraries", headers=admin))) == 2

    @pytest.mark.parametrize(
        "body, message",
        [
            ({"name": ""}, ["name should not be empty"]),
            ({"name": 3}, ["name must be a string"]),
            (
                {"exclusionPatterns": ["**/a", "**/a"]},
                ["All exclusionPatterns's elements must be unique"],
            ),
            ({"exclusionPatterns": [""]}, ["each value in exclusionPatterns should not be empty"]),
            ({"ownerId": "nope"}, ["ownerId must be a UUID"]),
            ({"type": "UPLOAD"}, ["type must be one of the following values: EXTERNAL"]),
        ],
    )
    async def test_dto_rules_answer_a_list(
        self, system: System, media_root: Path, body: dict[str, Any], message: list[str]
    ) -> None:
        admin, _, _ = await setup_user(system, media_root)
        r = await system.client.post("/api/libraries", headers=admin, json=body)
        assert r.status_code == 400 and r.json()["message"] == message, r.json()

    async def test_owner_defaults_to_the_caller(self, system: System, media_root: Path) -> None:
        _admin, user, headers = await setup_user(system, media_root)
        lib = await ok(
            await system.client.post(
                "/api/libraries", headers=headers, json={"importPaths": [str(media_root)]}
            ),
            201,
        )
        assert lib["ownerId"] == user["id"] and lib["importPaths"] == [str(media_root)]

    async def test_a_trailing_slash_is_normalised(self, system: System, media_root: Path) -> None:
        admin, user, _ = await setup_user(system, media_root)
        lib = await external_library(system, admin, user["id"], [f"{media_root}/photos/"])
        assert lib["importPaths"] == [f"{media_root}/photos"]
        other, _ = await create_user(system, admin, "slash@example.com", f"{media_root}/")
        assert other["externalPath"] == str(media_root)

    async def test_libraries_filter_by_type(self, system: System, media_root: Path) -> None:
        admin, user, headers = await setup_user(system, media_root)
        lib = await external_library(system, admin, user["id"], [str(media_root)])
        upload = await ok(await system.client.get("/api/libraries?type=UPLOAD", headers=headers))
        assert [(x["type"], x["name"]) for x in upload] == [("UPLOAD", "Default Library")]
        external = await ok(
            await system.client.get("/api/libraries", headers=headers, params={"type": "EXTERNAL"})
        )
        assert [x["id"] for x in external] == [lib["id"]]
        r = await system.client.get("/api/libraries?type=NAS", headers=headers)
        assert r.status_code == 400
        assert r.json()["message"] == ["type must be one of the following values: UPLOAD, EXTERNAL"]

    async def test_limits(self, system: System, media_root: Path) -> None:
        admin, user, _ = await setup_user(system, media_root)
        many = [str(media_root / f"p{i}") for i in range(129)]
        r = await system.client.post(
            "/api/libraries", headers=admin, json={"ownerId": user["id"], "importPaths": many}
        )
        assert r.status_code == 400
        assert r.json()["message"] == ["importPaths must contain no more than 128 elements"]
        r = await system.client.post(
            "/api/libraries",
            headers=admin,
            json={"ownerId": user["id"], "exclusionPatterns": [f"**/*.x{i}" for i in range(129)]},
        )
        assert r.status_code == 400


class TestUpdate:
    async def test_rename_paths_and_patterns(self, system: System, media_root: Path) -> None:
        admin, user, _ = await setup_user(system, media_root)
        (media_root / "a").mkdir()
        lib = await external_library(system, admin, user["id"], [])
        body = await ok(
            await system.client.put(
                f"/api/libraries/{lib['id']}",
                headers=admin,
                json={
                    "name": "Photos",
                    "importPaths": [str(media_root / "a")],
                    "exclusionPatterns": ["**/*.tif", "**/Raw/**", "**/*.{tif,jpg}"],
                },
            )
        )
        assert body["name"] == "Photos" and body["importPaths"] == [str(media_root / "a")]
        assert body["exclusionPatterns"] == ["**/*.tif", "**/Raw/**", "**/*.{tif,jpg}"]
        assert body["updatedAt"] >= lib["updatedAt"]

    async def test_update_refuses_a_missing_path(self, system: System, media_root: Path) -> None:
        admin, user, _ = await setup_user(system, media_root)
        lib = await external_library(system, admin, user["id"], [])
        r = await system.client.put(
            f"/api/libraries/{lib['id']}",
            headers=admin,
            json={"importPaths": [str(media_root / "nope")]},
        )
        assert r.status_code == 400
        assert r.json()["message"] == "Invalid import path: Path does not exist (ENOENT)"

    @pytest.mark.parametrize("pattern", ["", "   ", "a\x00b"])
    async def test_bad_patterns_are_refused(
        self, system: System, media_root: Path, pattern: str
    ) -> None:
        admin, user, _ = await setup_user(system, media_root)
        lib = await external_library(system, admin, user["id"], [])
        r = await system.client.put(
            f"/api/libraries/{lib['id']}", headers=admin, json={"exclusionPatterns": [pattern]}
        )
        assert r.status_code == 400 and r.json()["message"]

    async def test_unknown_library(self, system: System, media_root: Path) -> None:
        admin, _, _ = await setup_user(system, media_root)
        for r in (
            await system.client.get(f"/api/libraries/{UNKNOWN}", headers=admin),
            await system.client.put(f"/api/libraries/{UNKNOWN}", headers=admin, json={}),
            await system.client.post(f"/api/libraries/{UNKNOWN}/validate", headers=admin, json={}),
            await system.client.get(f"/api/libraries/{UNKNOWN}/statistics", headers=admin),
        ):
            assert r.status_code == 400 and r.json()["message"] == "Library not found"


async def test_deleting_a_library_hides_it_at_once_and_removes_its_assets(
    system: System, media_root: Path
) -> None:
    await system.start("scanner", run_scanner)
    await system.start("metadata", run_metadata)  # the renditions' owner finishes a deletion
    admin, user, _ = await setup_user(system, media_root)
    make_tree(media_root, {"a.jpg": None, "b/c.jpg": None})
    lib = await external_library(system, admin, user["id"], [str(media_root)])
    await scan(system, admin, lib["id"])
    assert len(await assets_of(system, admin, lib["id"])) == 2
    r = await system.client.delete(f"/api/libraries/{lib['id']}", headers=admin)
    assert r.status_code == 204
    listed = await ok(await system.client.get("/api/libraries", headers=admin))
    assert lib["id"] not in [x["id"] for x in listed]

    async def gone() -> bool:
        async with system.ctx.engine.connect() as conn:
            from sqlalchemy import text

            n = (
                await conn.execute(
                    text("SELECT count(*) FROM assets WHERE library_id = :l"), {"l": lib["id"]}
                )
            ).scalar()
            libs = (
                await conn.execute(
                    text("SELECT count(*) FROM libraries WHERE id = :l"), {"l": lib["id"]}
                )
            ).scalar()
        return n == 0 and libs == 0

    await eventually(gone, 20, "the library's assets to be removed")
    assert sorted(os.listdir(media_root)) == ["a.jpg", "b"]  # files untouched


async def test_api_key_needs_the_library_permission(system: System, media_root: Path) -> None:
    admin, user, _ = await setup_user(system, media_root)
    created = await ok(
        await system.client.post(
            "/api/api-keys", headers=admin, json={"name": "up", "permissions": ["asset.upload"]}
        ),
        201,
    )
    key = {"x-api-key": created["secret"]}
    r = await system.client.get("/api/libraries", headers=key)
    assert r.status_code == 403 and "library.read" in r.json()["message"]
    reader = await ok(
        await system.client.post(
            "/api/api-keys", headers=admin, json={"name": "read", "permissions": ["library.read"]}
        ),
        201,
    )
    rkey = {"x-api-key": reader["secret"]}
    assert (await system.client.get("/api/libraries", headers=rkey)).status_code == 200
    r = await system.client.post(
        "/api/libraries", headers=rkey, json={"ownerId": user["id"], "importPaths": []}
    )
    assert r.status_code == 403 and "library.create" in r.json()["message"]
