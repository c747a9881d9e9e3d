"""The API's edge: unstorable strings, nesting, body limits and authentication before the body."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import msgspec
from sqlalchemy import text

from services.api.app import build_app
from services.api.multipart import MAX_FIELD_BYTES, MAX_HEADER_BYTES, MAX_PARTS
from tests.api.assets import (
    BOUNDARY,
    MULTIPART_TAIL,
    MULTIPART_TYPE,
    leftovers,
    multipart_head,
    photo,
    upload,
)
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import System


async def passed_over(system: System) -> int:
    """Events the projector could not apply (none, when the edge refused them)."""
    async with system.ctx.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM projection_failures"))).scalar())


def assert_immich_error(r: httpx.Response, status: int) -> Any:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status and body["error"] and body["message"], body
    return body["message"]


class TestUnstorableStrings:
    async def test_a_nul_in_my_name_is_refused_and_the_user_stays_writable(
        self, system: System, media_root: Any
    ) -> None:
        admin = await sign_up_admin(system)
        user, headers = await create_user(system, admin, "mallory@example.com")
        r = await system.client.put("/api/users/me", headers=headers, json={"name": "mallory\x00"})
        assert "name must not contain NUL characters" in assert_immich_error(r, 400)
        assert await passed_over(system) == 0
        body = await ok(
            await system.client.put(
                f"/api/admin/users/{user['id']}",
                headers=admin,
                json={"externalPath": str(media_root)},
            )
        )
        assert body["name"] == "mallory" and body["externalPath"] == str(media_root)
        await ok(await system.client.delete(f"/api/admin/users/{user['id']}", headers=admin))

    async def test_a_nul_in_an_api_key_name_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post("/api/api-keys", headers=admin, json={"name": "k\x00"})
        assert "name must not contain NUL characters" in assert_immich_error(r, 400)
        assert await passed_over(system) == 0
        assert await ok(await system.client.get("/api/api-keys", headers=admin)) == []
        await ok(await system.client.put("/api/users/me", headers=admin, json={"name": "A"}))

    async def test_a_nul_in_a_library_name_is_refused(
        self, system: System, media_root: Any
    ) -> None:
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "u@example.com", str(media_root))
        lib = await ok(
            await system.client.post(
                "/api/libraries",
                headers=admin,
                json={"ownerId": user["id"], "importPaths": [str(media_root)]},
            ),
            201,
        )
        r = await system.client.put(
            f"/api/libraries/{lib['id']}", headers=admin, json={"name": "x\x00"}
        )
        assert_immich_error(r, 400)
        assert await passed_over(system) == 0
        renamed = await ok(
            await system.client.put(
                f"/api/libraries/{lib['id']}", headers=admin, json={"name": "NAS"}
            )
        )
        assert renamed["name"] == "NAS"

    async def test_a_nul_anywhere_in_a_body_or_a_query_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/assets/exist",
            headers=admin,
            json={"deviceAssetIds": ["ok", "bad\x00"], "deviceId": "d"},
        )
        assert assert_immich_error(r, 400) == ["deviceAssetIds[1] must not contain NUL characters"]
        r = await system.client.get("/api/albums", headers=admin, params={"name": "a\x00"})
        assert assert_immich_error(r, 400) == ["name must not contain NUL characters"]

    async def test_a_nul_in_an_upload_form_field_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await upload(system, admin, photo(1), fields={"deviceId": "d\x00"})
        assert "deviceId must not contain NUL characters" in assert_immich_error(r, 400)
        assert leftovers(system) == []


class TestNumbers:
    async def test_an_integer_wider_than_64_bits_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "q@example.com")
        r = await system.client.put(
            f"/api/admin/users/{user['id']}", headers=admin, json={"quotaSizeInBytes": 1 << 70}
        )
        assert assert_immich_error(r, 400) == [
            "quotaSizeInBytes must be an integer that fits in 64 bits"
        ]
        assert await passed_over(system) == 0

    async def test_a_search_page_past_any_offset_is_refused(self, system: System) -> None:
        # Found by the fuzzer: the page's OFFSET overflowed PostgreSQL's bigint (a 500).
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/search/metadata", headers=admin, json={"page": 7861464995440176326, "size": 84}
        )
        assert_immich_error(r, 400)


class TestNesting:
    async def test_deeply_nested_json_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        for depth in (40, 5000, 200_000):
            body = b'{"name":' + b"[" * depth + b"]" * depth + b"}"
            r = await system.client.put(
                "/api/users/me",
                headers={**admin, "content-type": "application/json"},
                content=body,
            )
            assert "nested deeper" in str(assert_immich_error(r, 400)), depth


class TestBodyLimits:
    async def test_an_anonymous_body_is_not_read(self, system: System) -> None:
        await sign_up_admin(system)
        # Not JSON and over the limit: only a server that authenticates first answers 401.
        body = b"{" * (2 << 20)
        r = await system.client.post(
            f"/api/libraries/{uuid.uuid4()}/validate",
            headers={"content-type": "application/json"},
            content=body,
        )
        assert assert_immich_error(r, 401) == "Authentication required"
        r = await system.client.post(
            f"/api/libraries/{uuid.uuid4()}/validate",
            headers={"content-type": "application/json", "x-api-key": "wrong"},
            content=b"[[[",
        )
        assert_immich_error(r, 401)

    async def test_an_oversized_json_body_is_refused_with_413(self, system: System) -> None:
        admin = await sign_up_admin(system)
        paths = ["/" + "p" * 1000] * (system.settings.max_json_size // 1000)
        r = await system.client.post(
            f"/api/libraries/{uuid.uuid4()}/validate", headers=admin, json={"importPaths": paths}
        )
        message = assert_immich_error(r, 413)
        assert str(system.settings.max_json_size) in message

    async def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(
        self, system: System
    ) -> None:
        admin = await sign_up_admin(system)
        settings = msgspec.structs.replace(system.settings, max_upload_size=100_000)
        ctx = dataclasses.replace(system.ctx, settings=settings)
        app = build_app(settings, ctx)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shoebox.test"
        ) as client:
            data = photo(2)
            body = multipart_head("big.jpg") + data + b"\0" * 200_000 + MULTIPART_TAIL
            r = await client.post("/api/assets", headers={**admin, **MULTIPART_TYPE}, content=body)
            assert "SHOEBOX_MAX_UPLOAD_SIZE" in assert_immich_error(r, 413)

            async def chunked() -> Any:  # no Content-Length: refused while streaming
                yield multipart_head("big.jpg")
                for _ in range(20):
                    yield b"\0" * 10_000

            r = await client.post(
                "/api/assets", headers={**admin, **MULTIPART_TYPE}, content=chunked()
            )
            assert_immich_error(r, 413)
            created = await client.post(
                "/api/assets",
                headers={**admin, **MULTIPART_TYPE},
                content=multipart_head("small.jpg") + data + MULTIPART_TAIL,
            )
            await ok(created, 201)
        assert len(leftovers(system)) == 1


def _field(name: str, value: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
    return head.encode() + value + b"\r\n"


class TestMultipartBounds:
    async def _post(self, system: System, headers: dict[str, str], body: bytes) -> httpx.Response:
        return await system.client.post(
            "/api/assets", headers={**headers, **MULTIPART_TYPE}, content=body
        )

    async def test_too_many_fields_are_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        fields = b"".join(_field(f"f{i}", b"x") for i in range(MAX_PARTS + 1))
        r = await self._post(system, admin, fields + multipart_head("a.jpg") + MULTIPART_TAIL)
        assert "parts" in assert_immich_error(r, 400)
        assert leftovers(system) == []

    async def test_a_long_field_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        body = _field("deviceId", b"x" * (MAX_FIELD_BYTES + 1)) + multipart_head("a.jpg")
        r = await self._post(system, admin, body + photo(3) + MULTIPART_TAIL)
        assert "deviceId" in assert_immich_error(r, 413)

    async def test_many_fields_just_under_the_field_limit_are_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        value = b"x" * (MAX_FIELD_BYTES - 1000)
        fields = b"".join(_field(f"f{i}", value) for i in range(8))
        r = await self._post(system, admin, fields + multipart_head("a.jpg") + MULTIPART_TAIL)
        assert "together" in assert_immich_error(r, 413)

    async def test_a_huge_part_header_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        # One header of 50 MB: refused after the first bytes past the bound, not parsed whole.
        head = f"--{BOUNDARY}\r\nX-Padding: ".encode()
        body = head + b"a" * (50 << 20) + b"\r\n\r\n" + MULTIPART_TAIL
        r = await self._post(system, admin, body)
        assert str(MAX_HEADER_BYTES) in assert_immich_error(r, 413)


class TestAdminUsers:
    async def test_with_deleted_lists_deleted_users(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "gone@example.com")
        await ok(await system.client.delete(f"/api/admin/users/{user['id']}", headers=admin))
        listed = await ok(await system.client.get("/api/admin/users", headers=admin))
        assert user["id"] not in [u["id"] for u in listed]
        listed = await ok(
            await system.client.get("/api/admin/users?withDeleted=true", headers=admin)
        )
        assert user["id"] in [u["id"] for u in listed]


class TestOpenAPI:
    async def test_documented_errors_have_the_shape_the_api_answers(self, system: System) -> None:
        spec = await ok(await system.client.get("/api/docs/openapi.json"))
        error = spec["components"]["schemas"]["ErrorResponseDto"]
        assert set(error["required"]) == {"message", "error", "statusCode"}
        operation = spec["paths"]["/api/admin/users"]["get"]
        assert [p["name"] for p in operation["parameters"]] == ["withDeleted"]
        # Signed in through a dependency (the timeline's filter) counts too; ping is for anyone.
        assert "401" in spec["paths"]["/api/timeline/buckets"]["get"]["responses"]
        assert "401" not in spec["paths"]["/api/server/ping"]["get"]["responses"]
        for path in spec["paths"].values():
            for op in path.values():
                for code, response in op["responses"].items():
                    if code.startswith(("4", "5")):
                        schema = response["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/ErrorResponseDto"}, code


async def test_a_malformed_id_in_any_path_is_immichs_400(system: System) -> None:
    """Every route with ids in its path answers a malformed one as Immich's UUID pipe does:
    400 `["id must be a UUID"]` (the route's own id) or `["<name> must be a UUID"]`, never 404
    and never before the caller is authenticated."""
    from tests.api.test_permissions import _operations, _request, _resolve

    admin = await sign_up_admin(system)
    spec = await ok(await system.client.get("/api/docs/openapi.json"))
    checked, failures = 0, []
    for method, path, op in _operations(spec):
        ids = [
            p["name"]
            for p in map(lambda p: _resolve(spec, p), op.get("parameters", []))
            if p["in"] == "path" and p.get("schema", {}).get("format") == "uuid"
        ]
        for i, name in enumerate(ids):
            call = _request(spec, path, op)
            call["url"] = path.replace("{" + name + "}", "not-a-uuid")
            for other in ids:
                call["url"] = call["url"].replace("{" + other + "}", str(uuid.uuid4()))
            anonymous = await system.client.request(method, **call)
            r = await system.client.request(method, **call, headers=admin)
            expected = "id" if i == 0 else name[0] + name.title().replace("_", "")[1:]
            if anonymous.status_code != 401:
                failures.append(f"{method} {path}: {anonymous.status_code} without credentials")
            if r.status_code != 400 or r.json()["message"] != [f"{expected} must be a UUID"]:
                failures.append(f"{method} {path} ({name}): {r.status_code} {r.text}")
            checked += 1
    assert checked >= 20, f"only {checked} routes with ids in their path"
    assert not failures, "\n".join(failures)
