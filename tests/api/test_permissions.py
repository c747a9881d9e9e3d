"""API-key permissions: every route Immich guards refuses a key that lacks the route's permission.

The table below is Immich's (server/src/controllers/*.controller.ts, `@Authenticated({permission,
admin})`; a route that names no permission asks a key for `all`), for every route Shoebox serves.
A new route fails these tests until it is in the table and declares its access.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.api.app import build_app
from services.api.auth import ACCESS, Access
from shared.settings import load_settings
from tests.helpers import ADMIN, create_user, login, ok, sign_up_admin
from tests.system import System

# operationId -> the permission an API key needs; None: any signed-in caller, whatever the key
# holds (Immich's `permission: false`).
ROUTES: dict[str, str | None] = {
    "getAboutInfo": "server.about",
    "getStorage": "server.storage",
    "getServerStatistics": "server.statistics",
    "getVersionCheck": "server.versionCheck",
    "logout": "all",  # Immich: @Authenticated() without a permission
    "validateAccessToken": None,
    "createApiKey": "apiKey.create",
    "getApiKeys": "apiKey.read",
    "getMyApiKey": None,
    "getApiKey": "apiKey.read",
    "deleteApiKey": "apiKey.delete",
    "getMyUser": "user.read",
    "updateMyUser": "user.update",
    "searchUsers": "user.read",
    "getUser": "user.read",
    "searchUsersAdmin": "adminUser.read",
    "createUserAdmin": "adminUser.create",
    "getUserAdmin": "adminUser.read",
    "updateUserAdmin": "adminUser.update",
    "deleteUserAdmin": "adminUser.delete",
    "getAllLibraries": "library.read",
    "createLibrary": "library.create",
    "getLibrary": "library.read",
    "updateLibrary": "library.update",
    "deleteLibrary": "library.delete",
    "validate": "all",  # Immich: @Authenticated({ admin: true }) without a permission
    "getLibraryStatistics": "library.statistics",
    "scanLibrary": "library.update",
    "getLibraryScanStatus": "library.read",  # Shoebox's own
    "removeOfflineFiles": "library.update",  # Immich's before v1.116 (admin)
    "uploadAsset": "asset.upload",
    "checkBulkUpload": "asset.upload",
    "checkExistingAssets": "all",  # Immich: @Authenticated() without a permission
    "deleteAssets": "asset.delete",
    "updateAssets": "asset.update",
    "updateAsset": "asset.update",
    "emptyTrash": "asset.delete",
    "restoreTrash": "asset.delete",
    "restoreAssets": "asset.delete",
    "getAssetStatistics": "asset.statistics",
    "getAssetInfo": "asset.read",
    "downloadAsset": "asset.download",
    "viewAsset": "asset.view",
    "playAssetVideo": "asset.view",
    "searchAssets": "asset.read",
    "getAllAlbums": "album.read",
    "createAlbum": "album.create",
    "getAlbumStatistics": "album.statistics",
    "getAlbumInfo": "album.read",
    "updateAlbumInfo": "album.update",
    "deleteAlbum": "album.delete",
    "addAssetsToAlbum": "albumAsset.create",
    "removeAssetFromAlbum": "albumAsset.delete",
    "getTimeBuckets": "timeline.read",
    "getTimeBucket": "timeline.read",
    "getMapMarkers": "map.read",
    "getConfig": "systemConfig.read",
    "getConfigDefaults": "systemConfig.read",
    "updateConfig": "systemConfig.update",
    "getQueuesLegacy": "job.read",
    "getDeadLetters": "job.read",  # Shoebox's own (decision 0024)
}

ADMIN_ROUTES = {
    "getServerStatistics",
    "searchUsersAdmin",
    "createUserAdmin",
    "getUserAdmin",
    "updateUserAdmin",
    "deleteUserAdmin",
    "getConfig",
    "getConfigDefaults",
    "updateConfig",
    "getQueuesLegacy",
    "getDeadLetters",
}

# Deliberately open to anybody, as in Immich (no @Authenticated): operationId -> why.
PUBLIC: dict[str, str] = {
    "pingServer": "clients probe the server before signing in",
    "getServerVersion": "clients check compatibility before signing in",
    "getServerFeatures": "the login page shows which sign-in methods exist",
    "getSupportedMediaTypes": "clients pick the files to upload before signing in",
    "getServerConfig": "the login page's message and onboarding state",
    "getVersionHistory": "Immich's @Authenticated({ public: true })",
    "login": "how a caller gets a session",
    "signUpAdmin": "the first admin exists before anybody can sign in",
}
# Routes outside the OpenAPI document, also public: GET /.well-known/immich (clients find the
# API there before signing in), /api/docs/* (the document itself) and /api/socket.io (the live
# updates' socket signs its caller in when it connects, services/api/live.py).

MISSING = "Missing required permission: "


def _handlers() -> list[Any]:
    """Every route handler of the app, without Litestar's own OPTIONS answers."""
    app = build_app(load_settings({}))
    return [
        h
        for route in app.routes
        for h in getattr(route, "route_handlers", [])
        if getattr(h, "http_methods", None) != {"OPTIONS"}
    ]


def _is_page(handler: Any) -> bool:
    """A page of the web app (services/api/web): outside /api and outside the OpenAPI document."""
    return not handler.resolve_include_in_schema() and not any(
        p.startswith(("/api", "/.well-known")) for p in handler.paths
    )


def test_every_route_declares_its_access() -> None:
    """A route that forgets `opt=requires(...)`, `signed_in()` or `public()` fails here."""
    undeclared = []
    wrong = []
    for handler in _handlers():
        access = handler.opt.get(ACCESS)
        name = handler.operation_id or handler.handler_name
        if not isinstance(access, Access):
            undeclared.append(name)
            continue
        if handler.operation_id is None and _is_page(handler):
            continue  # the web app declares its access too; tests/web drive it
        if name in PUBLIC or handler.operation_id is None:
            if access.signed_in:
                wrong.append(f"{name}: should be public")
            continue
        if name not in ROUTES:
            wrong.append(f"{name}: not in ROUTES (add Immich's permission)")
            continue
        expected = (ROUTES[name], name in ADMIN_ROUTES, True)
        if (access.permission, access.admin, access.signed_in) != expected:
            wrong.append(f"{name}: declares {access}, Immich has {expected}")
    assert not undeclared, f"routes without a declared access: {undeclared}"
    assert not wrong, "\n".join(wrong)


# --- the OpenAPI walk --------------------------------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _sample(spec: dict[str, Any], schema: dict[str, Any], name: str = "") -> Any:
    """A minimal value that satisfies `schema`: required properties only, empty arrays."""
    schema = _resolve(spec, schema)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [_resolve(spec, o) for o in schema[key]]
            return _sample(spec, next(o for o in options if o.get("type") != "null"))
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: _sample(spec, props[key], key) for key in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "date-time":
            return "2024-01-01T00:00:00Z"
        if fmt == "email" or name == "email":
            return "walk@example.com"
        return "x"
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation of the document."""
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _request(spec: dict[str, Any], path: str, op: dict[str, Any]) -> dict[str, Any]:
    """httpx arguments for a syntactically valid call: random UUIDs in the path, required query
    parameters, a minimal JSON body where the operation takes one."""
    params: dict[str, Any] = {}
    for p in op.get("parameters", []):
        p = _resolve(spec, p)
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", str(uuid.uuid4()))
        elif p["in"] == "query" and p.get("required"):
            params[p["name"]] = _sample(spec, p.get("schema", {}))
    kwargs: dict[str, Any] = {"url": path, "params": params}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kwargs["json"] = _sample(spec, content["application/json"].get("schema", {}))
    return kwargs


def _unauthenticated(r: Any) -> bool:
    """The answer is the refusal of a caller without credentials (a wrong password is not)."""
    return r.status_code == 401 and r.json().get("message") == "Authentication required"


def _refused(r: Any) -> bool:
    """The answer is a missing-permission refusal."""
    return r.status_code == 403 and str(r.json().get("message", "")).startswith(MISSING)


async def _key(system: System, headers: dict[str, str], *permissions: str) -> dict[str, str]:
    body = {"name": "+".join(permissions), "permissions": list(permissions)}
    created = await ok(await system.client.post("/api/api-keys", headers=headers, json=body), 201)
    return {"x-api-key": created["secret"]}


async def test_every_guarded_route_refuses_a_key_without_its_permission(system: System) -> None:
    session = await sign_up_admin(system)
    spec = await ok(await system.client.get("/api/docs/openapi.json"))
    operations = _operations(spec)
    ids = {op["operationId"] for _, _, op in operations}
    assert not ids - set(ROUTES) - set(PUBLIC), (
        f"routes missing from ROUTES or PUBLIC: {sorted(ids - set(ROUTES) - set(PUBLIC))}"
    )
    assert not (set(ROUTES) | set(PUBLIC)) - ids, "table lists routes the API does not serve"

    # One key per permission the table names; each route is called with a neighbour's key, so
    # the permission of one route is also shown not to open another.
    pool = sorted({p for p in ROUTES.values() if p not in (None, "all")})
    keys = {p: await _key(system, session, p) for p in pool}

    def unrelated(permission: str | None) -> str:
        if permission not in pool:
            return pool[0]
        return pool[(pool.index(permission) + 1) % len(pool)]

    failures: list[str] = []
    for method, path, op in operations:
        name = op["operationId"]
        call = _request(spec, path, op)
        if name in PUBLIC:
            r = await system.client.request(method, **call)
            if r.status_code == 403 or _unauthenticated(r):
                failures.append(f"{name} (public) answered {r.status_code} without credentials")
            continue
        needed = ROUTES[name]
        holder = unrelated(needed)
        r = await system.client.request(method, headers=keys[holder], **call)
        if needed is None:
            if r.status_code in (401, 403):
                failures.append(f"{name}: refused a {holder} key: {r.status_code} {r.text}")
        elif r.status_code != 403 or r.json().get("message") != MISSING + needed:
            failures.append(
                f"{method} {path} ({name}) with only {holder}: {r.status_code} {r.text[:120]}"
            )
    # Then each guarded route with exactly its permission: not refused (whatever else it says
    # about random ids and minimal bodies). Last, since these calls may change things.
    for method, path, op in operations:
        name = op["operationId"]
        needed = ROUTES.get(name)
        if name in PUBLIC or needed is None:
            continue
        headers = keys[needed] if needed in keys else await _key(system, session, needed)
        r = await system.client.request(method, headers=headers, **_request(spec, path, op))
        if r.status_code == 401 or _refused(r):
            failures.append(f"{name} refused its own permission {needed}: {r.text[:120]}")
    assert not failures, "\n".join(failures)


# --- the attack: a key handed to a program that only shows albums -----------------------------


class TestAlbumReadKey:
    async def _setup(self, system: System) -> tuple[dict[str, str], dict[str, str], str]:
        """(session, album.read key, id of the owner's full-access key)."""
        session = await sign_up_admin(system)
        full = await ok(
            await system.client.post(
                "/api/api-keys", headers=session, json={"name": "cli", "permissions": ["all"]}
            ),
            201,
        )
        return session, await _key(system, session, "album.read"), full["apiKey"]["id"]

    async def test_cannot_change_the_password_or_email(self, system: System) -> None:
        session, key, _ = await self._setup(system)
        r = await system.client.put(
            "/api/users/me",
            headers=key,
            json={"password": "attacker", "email": "attacker@example.com"},
        )
        assert r.status_code == 403 and r.json()["message"] == MISSING + "user.update"
        await login(system, ADMIN["email"], ADMIN["password"])  # the old password still works
        r = await system.client.post(
            "/api/auth/login", json={"email": "attacker@example.com", "password": "attacker"}
        )
        assert r.status_code == 401
        me = await ok(await system.client.get("/api/users/me", headers=session))
        assert me["email"] == ADMIN["email"]

    async def test_cannot_list_create_or_delete_keys(self, system: System) -> None:
        session, key, full_id = await self._setup(system)
        r = await system.client.get("/api/api-keys", headers=key)
        assert r.status_code == 403 and r.json()["message"] == MISSING + "apiKey.read"
        r = await system.client.get(f"/api/api-keys/{full_id}", headers=key)
        assert r.status_code == 403
        r = await system.client.post("/api/api-keys", headers=key, json={"permissions": ["all"]})
        assert r.status_code == 403 and r.json()["message"] == MISSING + "apiKey.create"
        r = await system.client.delete(f"/api/api-keys/{full_id}", headers=key)
        assert r.status_code == 403 and r.json()["message"] == MISSING + "apiKey.delete"
        keys = await ok(await system.client.get("/api/api-keys", headers=session))
        assert full_id in {k["id"] for k in keys} and len(keys) == 2

    async def test_cannot_read_users_search_or_existing_assets(self, system: System) -> None:
        session, key, _ = await self._setup(system)
        me = await ok(await system.client.get("/api/users/me", headers=session))
        for method, url, body in [
            ("GET", "/api/users", None),
            ("GET", "/api/users/me", None),
            ("GET", f"/api/users/{me['id']}", None),
            ("POST", "/api/search/metadata", {}),
            ("POST", "/api/assets/exist", {"deviceAssetIds": ["a"], "deviceId": "phone"}),
        ]:
            r = await system.client.request(method, url, headers=key, json=body)
            assert r.status_code == 403, f"{method} {url}: {r.status_code} {r.text}"
            assert r.json()["message"].startswith(MISSING)

    async def test_can_still_read_albums(self, system: System) -> None:
        _, key, _ = await self._setup(system)
        assert await ok(await system.client.get("/api/albums", headers=key)) == []


class TestKeysMakingKeys:
    async def test_a_key_cannot_grant_what_it_does_not_hold(self, system: System) -> None:
        session = await sign_up_admin(system)
        maker = await _key(system, session, "apiKey.create", "album.read")
        for wanted in (["all"], ["asset.read"], ["album.read", "user.update"]):
            r = await system.client.post(
                "/api/api-keys", headers=maker, json={"name": "x", "permissions": wanted}
            )
            assert r.status_code == 400, f"{wanted}: {r.status_code} {r.text}"
            assert r.json()["message"] == "Cannot grant permissions you do not have"
        made = await ok(
            await system.client.post(
                "/api/api-keys", headers=maker, json={"name": "y", "permissions": ["album.read"]}
            ),
            201,
        )
        assert made["apiKey"]["permissions"] == ["album.read"]

    async def test_key_permissions_allow_listing_and_deleting_keys(self, system: System) -> None:
        session = await sign_up_admin(system)
        victim = await _key(system, session, "album.read")
        mine = await ok(await system.client.get("/api/api-keys/me", headers=victim))
        reader = await _key(system, session, "apiKey.read")
        listed = await ok(await system.client.get("/api/api-keys", headers=reader))
        assert mine["id"] in {k["id"] for k in listed}
        deleter = await _key(system, session, "apiKey.delete")
        r = await system.client.delete(f"/api/api-keys/{mine['id']}", headers=deleter)
        assert r.status_code == 204
        assert (await system.client.get("/api/albums", headers=victim)).status_code == 401


class TestAdminRoutes:
    async def test_full_key_of_a_non_admin_is_refused_on_admin_routes(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, user = await create_user(system, admin, "user@example.com")
        key = await _key(system, user, "all")
        r = await system.client.get("/api/admin/users", headers=key)
        assert r.status_code == 403 and r.json()["message"] == "Forbidden"
