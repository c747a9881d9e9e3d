"""Another user's things: every route of the OpenAPI, called by Bob with the ids of Alice's
library, asset, album and API key, is refused (400/403/404) or answers without them, and
afterwards Alice's things are as they were."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from tests.api.assets import uploaded
from tests.api.test_permissions import (
    ADMIN_ROUTES,
    PUBLIC,
    ROUTES,
    _operations,
    _resolve,
    _sample,
)
from tests.factories import jpeg_bytes
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import System

SECRET = "alice-secret"  # in every name of Alice's things: it must never reach Bob

# Routes whose answer names other users by design, as Immich's do (a user picks whom to share
# with): operationId -> why. Alice's e-mail and name are not secrets; her things are.
SHOWS_USERS = {"searchUsers", "getUser"}

# Routes Bob may call with Alice's id and get an answer: the path id is the user's own
# business, as in Immich (any signed-in user may read another's public profile).
OPEN_WITH_ID = {"getUser"}


def _body(spec: dict[str, Any], schema: dict[str, Any], ids: dict[str, str]) -> Any:
    """A minimal valid body (test_permissions' sample) whose id fields name Alice's things."""
    body = _sample(spec, schema)
    props = _resolve(spec, schema).get("properties", {})
    if not isinstance(body, dict):
        return body
    for name, kind in _ID_FIELDS.items():
        if name in props:
            many = _resolve(spec, props[name]).get("type") == "array"
            body[name] = [ids[kind]] if many else ids[kind]
    return body


_ID_FIELDS = {
    "ids": "asset",
    "assetIds": "asset",
    "assetId": "asset",
    "libraryId": "library",
    "albumId": "album",
    "ownerId": "user",
    "userId": "user",
}


def _path_id(path: str, ids: dict[str, str]) -> str:
    """The id of Alice's thing that the route's path names."""
    for prefix, kind in (
        ("/api/libraries", "library"),
        ("/api/assets", "asset"),
        ("/api/albums", "album"),
        ("/api/api-keys", "key"),
        ("/api/admin/users", "user"),
        ("/api/users", "user"),
    ):
        if path.startswith(prefix):
            return ids[kind]
    return str(uuid.uuid4())


async def _alice(
    system: System, admin: dict[str, str], media: Path
) -> tuple[dict[str, str], dict[str, str]]:
    alice, headers = await create_user(system, admin, "alice@example.com", str(media))
    asset = await uploaded(system, headers, jpeg_bytes(), f"{SECRET}.jpg")
    library = await ok(
        await system.client.post(
            "/api/libraries",
            headers=admin,
            json={"ownerId": alice["id"], "name": f"{SECRET} library", "importPaths": [str(media)]},
        ),
        201,
    )
    album = await ok(
        await system.client.post(
            "/api/albums",
            headers=headers,
            json={"albumName": f"{SECRET} album", "assetIds": [asset]},
        ),
        201,
    )
    key = await ok(
        await system.client.post(
            "/api/api-keys", headers=headers, json={"name": f"{SECRET} key", "permissions": ["all"]}
        ),
        201,
    )
    ids = {
        "user": alice["id"],
        "asset": asset,
        "library": library["id"],
        "album": album["id"],
        "key": key["apiKey"]["id"],
    }
    return ids, headers


async def _state(system: System, headers: dict[str, str], ids: dict[str, str]) -> Any:
    album = await ok(await system.client.get(f"/api/albums/{ids['album']}", headers=headers))
    library = await ok(await system.client.get(f"/api/libraries/{ids['library']}", headers=headers))
    asset = await ok(await system.client.get(f"/api/assets/{ids['asset']}", headers=headers))
    keys = await ok(await system.client.get("/api/api-keys", headers=headers))
    return (
        album["albumName"],
        sorted(a["id"] for a in album["assets"]),
        library["name"],
        library["importPaths"],
        asset["originalFileName"],
        asset.get("isTrashed", False),
        sorted(k["name"] for k in keys),
    )


async def test_no_route_gives_bob_alice_s_things(system: System, media_root: Path) -> None:
    admin = await sign_up_admin(system)
    ids, alice = await _alice(system, admin, media_root)
    _, bob = await create_user(system, admin, "bob@example.com")
    before = await _state(system, alice, ids)
    spec = await ok(await system.client.get("/api/docs/openapi.json"))
    alice_ids = set(ids.values()) - {ids["user"]}
    failures: list[str] = []
    for method, path, op in _operations(spec):
        name = op["operationId"]
        if name in PUBLIC or name in ("signUpAdmin", "logout"):  # logout would end the walk
            continue
        url = re.sub(r"\{(\w+)\}", _path_id(path, ids), path)
        params: dict[str, Any] = {}
        for p in op.get("parameters", []):
            p = _resolve(spec, p)
            if p["in"] == "query" and p.get("required"):
                params[p["name"]] = _sample(spec, p.get("schema", {}))
        kwargs: dict[str, Any] = {"params": params}
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            kwargs["json"] = _body(spec, content["application/json"].get("schema", {}), ids)
        r = await system.client.request(method, url, headers=bob, **kwargs)
        text = r.text
        if SECRET in text:
            failures.append(f"{method} {path} ({name}) showed Alice's things: {text[:160]}")
            continue
        names_alice = "{" in path and name not in OPEN_WITH_ID
        if name in ADMIN_ROUTES or (ROUTES.get(name) and names_alice):
            if r.status_code not in (400, 403, 404):
                failures.append(f"{method} {path} ({name}) answered {r.status_code}: {text[:160]}")
        elif r.status_code < 300 and name not in SHOWS_USERS:
            # An answer to Bob may echo the ids he sent (per-id results), never list more.
            leaked = {i for i in alice_ids if i in text} - {
                i for i in alice_ids if i in str(kwargs)
            }
            if leaked:
                failures.append(f"{method} {path} ({name}) listed Alice's ids {leaked}")
    assert not failures, "\n".join(failures)
    assert await _state(system, alice, ids) == before, "Bob changed Alice's things"
