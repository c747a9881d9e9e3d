"""Users, auth, API keys, upload libraries and error shapes through the real API."""

from __future__ import annotations

from tests.helpers import ADMIN, create_user, login, ok, sign_up_admin
from tests.system import System


class TestServer:
    async def test_ping_answers_pong_without_auth(self, system: System) -> None:
        assert await ok(await system.client.get("/api/server/ping")) == {"res": "pong"}

    async def test_well_known_points_at_api(self, system: System) -> None:
        body = await ok(await system.client.get("/.well-known/immich"))
        assert body == {"api": {"endpoint": "/api"}}

    async def test_version_and_features(self, system: System) -> None:
        version = await ok(await system.client.get("/api/server/version"))
        assert set(version) == {"major", "minor", "patch"}
        features = await ok(await system.client.get("/api/server/features"))
        assert features["passwordLogin"] is True

    async def test_about_requires_auth(self, system: System) -> None:
        r = await system.client.get("/api/server/about")
        assert r.status_code == 401
        assert r.json()["message"] == "Authentication required"


class TestAdminSignUp:
    async def test_first_user_becomes_admin(self, system: System) -> None:
        body = await ok(await system.client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
        assert body["isAdmin"] is True and body["email"] == ADMIN["email"]

    async def test_second_sign_up_is_refused(self, system: System) -> None:
        await sign_up_admin(system)
        r = await system.client.post(
            "/api/auth/admin-sign-up", json={**ADMIN, "email": "other@example.com"}
        )
        assert r.status_code == 400
        assert "admin" in r.json()["message"]

    async def test_login_with_wrong_password_is_401(self, system: System) -> None:
        await sign_up_admin(system)
        r = await system.client.post(
            "/api/auth/login", json={"email": ADMIN["email"], "password": "nope"}
        )
        assert r.status_code == 401
        assert r.json()["message"] == "Incorrect email or password"

    async def test_logout_ends_the_session(self, system: System) -> None:
        headers = await sign_up_admin(system)
        await ok(await system.client.get("/api/users/me", headers=headers))
        body = await ok(await system.client.post("/api/auth/logout", headers=headers))
        assert body["successful"] is True
        r = await system.client.get("/api/users/me", headers=headers)
        assert r.status_code == 401


class TestUsers:
    async def test_admin_creates_user_with_upload_library(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, headers = await create_user(system, admin, "alice@example.com")
        libraries = await ok(await system.client.get("/api/libraries", headers=admin))
        mine = [lib for lib in libraries if lib["ownerId"] == user["id"]]
        assert len(mine) == 1 and mine[0]["type"] == "UPLOAD"
        me = await ok(await system.client.get("/api/users/me", headers=headers))
        assert me["id"] == user["id"] and me["isAdmin"] is False
        assert me["externalPath"] is None

    async def test_non_admin_on_admin_route_is_403(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, headers = await create_user(system, admin, "bob@example.com")
        r = await system.client.get("/api/admin/users", headers=headers)
        assert r.status_code == 403
        assert r.json()["statusCode"] == 403 and r.json()["message"]

    async def test_update_and_delete_user(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "carol@example.com")
        body = await ok(
            await system.client.put(
                f"/api/admin/users/{user['id']}", json={"name": "Carol"}, headers=admin
            )
        )
        assert body["name"] == "Carol"
        await ok(await system.client.delete(f"/api/admin/users/{user['id']}", headers=admin))
        users = await ok(await system.client.get("/api/admin/users", headers=admin))
        assert user["id"] not in [u["id"] for u in users]
        r = await system.client.post(
            "/api/auth/login", json={"email": "carol@example.com", "password": "x"}
        )
        assert r.status_code == 401

    async def test_duplicate_email_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        await create_user(system, admin, "dave@example.com")
        r = await system.client.post(
            "/api/admin/users",
            headers=admin,
            json={"email": "dave@example.com", "password": "x", "name": "d"},
        )
        assert r.status_code == 400

    async def test_user_cannot_set_own_external_path(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, headers = await create_user(system, admin, "erin@example.com")
        r = await system.client.put(
            f"/api/admin/users/{user['id']}", headers=headers, json={"externalPath": "/"}
        )
        assert r.status_code == 403
        me = await ok(await system.client.get("/api/users/me", headers=headers))
        assert me["externalPath"] is None


class TestApiKeys:
    async def test_api_key_authenticates_and_reports_permissions(self, system: System) -> None:
        admin = await sign_up_admin(system)
        created = await ok(
            await system.client.post(
                "/api/api-keys", json={"name": "cli", "permissions": ["all"]}, headers=admin
            ),
            201,
        )
        key = {"x-api-key": created["secret"]}
        me = await ok(await system.client.get("/api/users/me", headers=key))
        assert me["email"] == ADMIN["email"]
        mine = await ok(await system.client.get("/api/api-keys/me", headers=key))
        assert mine["permissions"] == ["all"] and mine["name"] == "cli"

    async def test_wrong_api_key_is_401(self, system: System) -> None:
        r = await system.client.get("/api/users/me", headers={"x-api-key": "nope"})
        assert r.status_code == 401


class TestUploadLibrary:
    async def test_upload_library_can_be_renamed_not_deleted(self, system: System) -> None:
        admin = await sign_up_admin(system)
        libraries = await ok(await system.client.get("/api/libraries", headers=admin))
        (upload,) = libraries
        renamed = await ok(
            await system.client.put(
                f"/api/libraries/{upload['id']}", json={"name": "Phone"}, headers=admin
            )
        )
        assert renamed["name"] == "Phone"
        r = await system.client.delete(f"/api/libraries/{upload['id']}", headers=admin)
        assert r.status_code == 400
        assert "upload library" in r.json()["message"]
        assert len(await ok(await system.client.get("/api/libraries", headers=admin))) == 1


class TestBadInput:
    async def test_malformed_json_is_400(self, system: System) -> None:
        r = await system.client.post(
            "/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["statusCode"] == 400

    async def test_wrong_field_type_is_400_with_message(self, system: System) -> None:
        r = await system.client.post(
            "/api/auth/admin-sign-up", json={"email": 5, "password": "x", "name": "n"}
        )
        assert r.status_code == 400
        assert isinstance(r.json()["message"], list) and r.json()["message"]
        assert not await _initialized(system)

    async def test_missing_auth_is_401(self, system: System) -> None:
        r = await system.client.get("/api/libraries")
        assert r.status_code == 401 and r.json()["error"] == "Unauthorized"

    async def test_unknown_ids(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.get(
            "/api/libraries/1b4e28ba-2fa1-11d2-883f-0016d3cca427", headers=admin
        )
        assert r.status_code == 400 and r.json()["message"] == "Library not found"
        r = await system.client.get("/api/admin/users/not-a-uuid", headers=admin)
        assert r.status_code in (400, 404)
        r = await system.client.get(
            "/api/admin/users/1b4e28ba-2fa1-11d2-883f-0016d3cca427", headers=admin
        )
        assert r.status_code == 400

    async def test_login_token_works_after_login(self, system: System) -> None:
        await sign_up_admin(system)
        headers = await login(system, ADMIN["email"], ADMIN["password"])
        assert (await system.client.get("/api/users/me", headers=headers)).status_code == 200


async def _initialized(system: System) -> bool:
    async with system.ctx.engine.connect() as conn:
        from sqlalchemy import text

        return (await conn.execute(text("SELECT count(*) FROM users"))).scalar() != 0


async def test_requests_survive_the_databases_connections_being_cut(system: System) -> None:
    """As after a PostgreSQL restart: every pooled connection of the API is terminated; the
    next request gets a fresh one instead of answering 500."""
    import asyncpg

    admin = await sign_up_admin(system)
    assert (await system.client.get("/api/users/me", headers=admin)).status_code == 200
    conn = await asyncpg.connect(system.settings.db.url.replace("+asyncpg", ""))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    assert killed >= 1
    for _ in range(3):
        r = await system.client.get("/api/users/me", headers=admin)
        assert r.status_code == 200, r.text
