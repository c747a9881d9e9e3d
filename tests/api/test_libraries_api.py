"""External libraries through the real API: create, edit, validate, the external-path fence."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from shared.globs import DEFAULT_EXCLUSION_PATTERNS
from tests.factories import make_tree
from tests.helpers import assets_of, create_user, external_library, ok, scan, sign_up_admin
from tests.system import System, eventually, run_metadata, run_scanner

UNKNOWN = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


async def _setup(
    system: System, media: Path
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    admin = await sign_up_admin(system)
    user, headers = await create_user(system, admin, "user@example.com", str(media))
    return admin, user, headers


async def _validate(
    system: System, headers: dict[str, str], lib: str, paths: list[str]
) -> list[dict[str, Any]]:
    body = await ok(
        await system.client.post(
            f"/api/libraries/{lib}/validate", headers=headers, json={"importPaths": paths}
        )
    )
    return body["importPaths"]  # type: ignore[no-any-return]


class TestCreate:
    async def test_admin_creates_for_a_user_with_defaults(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await _setup(system, media_root)
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
        admin, user, headers = await _setup(system, media_root)
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
        admin, user, _ = await _setup(system, media_root)
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
        admin, _, _ = await _setup(system, media_root)
        r = await system.client.post("/api/libraries", headers=admin, json=body)
        assert r.status_code == 400 and r.json()["message"] == message, r.json()

    async def test_owner_defaults_to_the_caller(self, system: System, media_root: Path) -> None:
        _admin, user, headers = await _setup(system, media_root)
        lib = await ok(
            await system.client.post(
                "/api/libraries", headers=headers, json={"importPaths": [str(media_root)]}
            ),
            201,
        )
        assert lib["ownerId"] == user["id"] and lib["importPaths"] == [str(media_root)]

    async def test_a_trailing_slash_is_normalised(self, system: System, media_root: Path) -> None:
        admin, user, _ = await _setup(system, media_root)
        lib = await external_library(system, admin, user["id"], [f"{media_root}/photos/"])
        assert lib["importPaths"] == [f"{media_root}/photos"]
        other, _ = await create_user(system, admin, "slash@example.com", f"{media_root}/")
        assert other["externalPath"] == str(media_root)

    async def test_libraries_filter_by_type(self, system: System, media_root: Path) -> None:
        admin, user, headers = await _setup(system, media_root)
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
        admin, user, _ = await _setup(system, media_root)
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
        admin, user, _ = await _setup(system, media_root)
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
        (result,) = await _validate(system, admin, lib["id"], [bad])
        assert result["isValid"] is False and result["message"]

    async def test_non_utf8_path_is_refused(self, system: System, media_root: Path) -> None:
        admin, user, _ = await _setup(system, media_root)
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
        admin, user, _ = await _setup(system, media_root)
        make_tree(media_root, {"photos/a.jpg": None, "file.jpg": None})
        lib = await external_library(system, admin, user["id"], [])
        results = await _validate(
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
        assert await _validate(system, admin, lib["id"], []) == []

    async def test_changing_the_external_path_takes_effect_at_next_validation(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await _setup(system, media_root)
        (media_root / "photos").mkdir()
        lib = await external_library(system, admin, user["id"], [str(media_root / "photos")])
        (ok_result,) = await _validate(system, admin, lib["id"], [str(media_root / "photos")])
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
        admin, user, _headers = await _setup(system, media_root)
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
        _admin, user, headers = await _setup(system, media_root)
        r = await system.client.put(
            f"/api/admin/users/{user['id']}", headers=headers, json={"externalPath": "/"}
        )
        assert r.status_code == 403
        me = await ok(await system.client.get("/api/users/me", headers=headers))
        assert me["externalPath"] == str(media_root)

    async def test_external_path_must_be_absolute_and_normalised(
        self, system: System, media_root: Path
    ) -> None:
        admin, user, _ = await _setup(system, media_root)
        for bad in ("relative", "/a/../b", "/a//b", "", "/a\x00"):
            r = await system.client.put(
                f"/api/admin/users/{user['id']}", headers=admin, json={"externalPath": bad}
            )
            assert r.status_code == 400, bad


class TestUpdate:
    async def test_rename_paths_and_patterns(self, system: System, media_root: Path) -> None:
        admin, user, _ = await _setup(system, media_root)
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
        admin, user, _ = await _setup(system, media_root)
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
        admin, user, _ = await _setup(system, media_root)
        lib = await external_library(system, admin, user["id"], [])
        r = await system.client.put(
            f"/api/libraries/{lib['id']}", headers=admin, json={"exclusionPatterns": [pattern]}
        )
        assert r.status_code == 400 and r.json()["message"]

    async def test_unknown_library(self, system: System, media_root: Path) -> None:
        admin, _, _ = await _setup(system, media_root)
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
    admin, user, _ = await _setup(system, media_root)
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
    admin, user, _ = await _setup(system, media_root)
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
