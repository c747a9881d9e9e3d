"""Immich's live updates: a real socket.io client on /api/socket.io hears its own assets' news.

The API is served by uvicorn on a TCP port in this event loop (as for Immich's own clients), with
the projector, the scanner and the metadata service beside it. The client is python-socketio's
asyncio client over a WebSocket, as Immich's web and mobile clients connect.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import text

from tests.api.assets import uploaded
from tests.e2e.test_immich_clients import (
    CLIENTS,
    client_env,
    http_api,
    immich_clients,  # noqa: F401 (the fixture that installs the pinned clients)
    run,
)
from tests.factories import jpeg_bytes
from tests.helpers import ADMIN, create_user, external_library, login, ok, scan, sign_up_admin
from tests.system import Infra, System, eventually, open_system, run_metadata, run_scanner

pytestmark = pytest.mark.e2e


@dataclass
class Listener:
    """A connected socket.io client and everything it has heard, by event name."""

    client: socketio.AsyncClient
    heard: dict[str, list[Any]] = field(default_factory=dict)

    def of(self, event: str) -> list[Any]:
        return self.heard.get(event, [])


@contextlib.asynccontextmanager
async def listening(
    url: str, headers: dict[str, str] | None = None, auth: dict[str, str] | None = None
) -> AsyncIterator[Listener]:
    """A socket.io client connected as Immich's clients connect: path /api/socket.io, WebSocket."""
    async with aiohttp.ClientSession() as http:  # ours, so a refused connection closes it too
        client = socketio.AsyncClient(reconnection=False, http_session=http)
        listener = Listener(client)

        def record(event: str, *args: Any) -> None:
            listener.heard.setdefault(event, []).append(args[0] if args else None)

        client.on("*", record)
        await client.connect(
            url.removesuffix("/api"),
            headers=headers or {},
            auth=auth,
            socketio_path="/api/socket.io",
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            yield listener
        finally:
            await client.disconnect()


@contextlib.asynccontextmanager
async def served(infra: Infra, tmp_path: Path) -> AsyncIterator[tuple[System, str]]:
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        await system.start("metadata", run_metadata)
        async with http_api(system) as url:
            yield system, url


async def test_upload_and_scan_reach_their_owner_only_and_a_delete_follows(
    infra: Infra, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    (media / "lib").mkdir(parents=True)
    for i in range(3):
        (media / "lib" / f"IMG_{i}.jpg").write_bytes(jpeg_bytes((40 + i, 30), (200, 20 * i, 40)))
    async with served(infra, tmp_path) as (system, url):
        admin = await sign_up_admin(system)
        owner, mine = await create_user(system, admin, "owner@example.com", str(media))
        _, theirs = await create_user(system, admin, "other@example.com")
        async with listening(url, mine) as me, listening(url, theirs) as other:
            # Immich's server greets every connection with its version.
            await eventually(lambda: _has(me, "on_server_version"), 10, "on_server_version")
            assert set(me.of("on_server_version")[0]) >= {"major", "minor", "patch"}

            asset_id = await uploaded(system, mine, jpeg_bytes((64, 48), (10, 200, 30)))
            await eventually(lambda: _has(me, "on_upload_success"), 20, "the upload's news")
            news = me.of("on_upload_success")[0]
            assert news["id"] == asset_id and news["ownerId"] == owner["id"]
            assert news["thumbhash"] and news["originalFileName"] == "photo.jpg"

            lib = (await external_library(system, admin, owner["id"], [str(media / "lib")]))["id"]
            await scan(system, admin, lib)
            await eventually(
                lambda: _has(me, "on_upload_success", 4), 30, "the scanned assets' news"
            )
            scanned = {a["originalPath"] for a in me.of("on_upload_success")[1:]}
            assert scanned == {str(media / "lib" / f"IMG_{i}.jpg") for i in range(3)}

            # A file gone at the next scan: its asset goes offline, an update in Immich's terms.
            (media / "lib" / "IMG_0.jpg").unlink()
            await scan(system, admin, lib)
            await eventually(lambda: _has(me, "on_asset_update"), 20, "the offline asset's news")
            update = me.of("on_asset_update")[0]
            assert update["originalPath"] == str(media / "lib" / "IMG_0.jpg")
            assert update["isOffline"] is True

            response = await system.client.request(
                "DELETE", "/api/assets", headers=mine, json={"ids": [asset_id], "force": True}
            )
            assert response.status_code == 204, response.text
            await eventually(lambda: _has(me, "on_asset_delete"), 20, "on_asset_delete")
            assert me.of("on_asset_delete") == [asset_id]

            # The other user heard the greeting and nothing of the owner's assets, and an
            # upload of their own reaches them alone.
            theirs_id = await uploaded(system, theirs, jpeg_bytes((50, 50), (90, 90, 200)))
            await eventually(lambda: _has(other, "on_upload_success"), 20, "the other's news")
            assert [a["id"] for a in other.of("on_upload_success")] == [theirs_id]
            assert set(other.heard) == {"on_server_version", "on_upload_success"}
            assert theirs_id not in {a["id"] for a in me.of("on_upload_success")}


async def test_socket_signs_in_like_the_api_and_refuses_a_stranger(
    infra: Infra, tmp_path: Path
) -> None:
    async with served(infra, tmp_path) as (system, url):
        admin = await sign_up_admin(system)
        key = await ok(
            await system.client.post(
                "/api/api-keys", headers=admin, json={"name": "live", "permissions": ["all"]}
            ),
            201,
        )
        token = admin["Authorization"].removeprefix("Bearer ")
        key_headers = {"x-api-key": key["secret"]}
        ways: list[tuple[dict[str, str], dict[str, str] | None]] = [
            ({"x-api-key": key["secret"]}, None),
            ({"x-immich-user-token": token}, None),
            ({"cookie": f"immich_access_token={token}"}, None),
            ({}, {"token": token}),
        ]
        for headers, auth in ways:
            async with listening(url, headers, auth) as listener:
                greeted = functools.partial(_has, listener, "on_server_version")
                await eventually(greeted, 10, f"a greeting for {headers or auth}")

        # Signing out ends the session: its sockets hear Immich's on_session_delete.
        async with listening(url, admin) as listener, listening(url, key_headers) as by_key:
            await eventually(lambda: _has(by_key, "on_server_version"), 10, "the key's greeting")
            before = await _sessions(system)
            await ok(await system.client.post("/api/auth/logout", headers=admin))
            await eventually(lambda: _has(listener, "on_session_delete"), 10, "on_session_delete")
            [ended] = listener.of("on_session_delete")
            assert ended in before - await _sessions(system)  # the session that signed out
            assert "on_session_delete" not in by_key.heard

        async with listening(url, {"x-api-key": "not-a-key"}) as stranger:
            await eventually(lambda: _has(stranger, "error"), 10, "the stranger's refusal")

            async def gone() -> bool:
                return not stranger.client.connected

            await eventually(gone, 10, "the stranger to be disconnected")
        assert stranger.heard == {"error": ["unauthorized"]}

        # A browser page of this server may listen with the user's cookie; another site's may not.
        base = url.removesuffix("/api")
        again = (await login(system, ADMIN["email"], ADMIN["password"]))["Authorization"]
        cookie = {"cookie": f"immich_access_token={again.removeprefix('Bearer ')}"}
        async with listening(url, {**cookie, "origin": base}) as listener:
            await eventually(lambda: _has(listener, "on_server_version"), 10, "same-origin")
        with pytest.raises(socketio.exceptions.ConnectionError):
            async with listening(url, {**cookie, "origin": "http://elsewhere.example"}):
                pass


async def test_jobs_answer_immich_queue_shape_from_the_consumers(
    infra: Infra, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    (media / "lib").mkdir(parents=True)
    for i in range(4):
        (media / "lib" / f"IMG_{i}.jpg").write_bytes(jpeg_bytes((30 + i, 30), (20, 200, 40)))
    async with served(infra, tmp_path) as (system, _url):
        admin = await sign_up_admin(system)
        owner, mine = await create_user(system, admin, "owner@example.com", str(media))
        refused = await system.client.get("/api/jobs", headers=mine)
        assert refused.status_code == 403, refused.text

        # The metadata service stopped: what a scan finds waits in its consumer.
        await system.stop("metadata")
        lib = (await external_library(system, admin, owner["id"], [str(media / "lib")]))["id"]
        await scan(system, admin, lib)
        jobs = await ok(await system.client.get("/api/jobs", headers=admin))
        for queue in ("library", "metadataExtraction", "thumbnailGeneration", "smartSearch"):
            assert set(jobs[queue]) == {"jobCounts", "queueStatus"}
            assert set(jobs[queue]["jobCounts"]) == {
                "active",
                "completed",
                "failed",
                "delayed",
                "waiting",
                "paused",
            }
            assert set(jobs[queue]["queueStatus"]) == {"isActive", "isPaused"}
        # The four new files of one folder are one message (decision 0030).
        assert jobs["metadataExtraction"]["jobCounts"]["waiting"] >= 1
        assert jobs["thumbnailGeneration"]["jobCounts"] == jobs["metadataExtraction"]["jobCounts"]
        assert jobs["library"]["jobCounts"]["waiting"] == 0
        assert jobs["smartSearch"]["jobCounts"]["waiting"] == 0

        # Started again, it works the backlog off: Immich's e2e helper waits for exactly this.
        await system.start("metadata", run_metadata)

        async def drained() -> bool:
            jobs = await ok(await system.client.get("/api/jobs", headers=admin))
            counts = jobs["metadataExtraction"]["jobCounts"]
            return bool(counts["waiting"] == 0 and counts["active"] == 0)

        await eventually(drained, 30, "the metadata queue to drain")


@pytest.mark.usefixtures("immich_clients")
async def test_immich_web_client_hears_a_scan_and_the_sdk_reads_thumbhashes_and_queues(
    infra: Infra, tmp_path: Path
) -> None:
    """Immich's web app listens with socket.io-client; @immich/sdk reads what it announced."""
    media = tmp_path / "media"
    (media / "lib").mkdir(parents=True)
    for i in range(3):
        (media / "lib" / f"IMG_{i}.jpg").write_bytes(jpeg_bytes((48 + i, 32), (30, 60 * i, 200)))
    async with served(infra, tmp_path) as (system, url):
        admin = await sign_up_admin(system)
        me = await ok(await system.client.get("/api/users/me", headers=admin))
        await ok(
            await system.client.put(
                f"/api/admin/users/{me['id']}", headers=admin, json={"externalPath": str(media)}
            )
        )
        key = await ok(
            await system.client.post(
                "/api/api-keys", headers=admin, json={"name": "web", "permissions": ["all"]}
            ),
            201,
        )
        lib = (await external_library(system, admin, me["id"], [str(media / "lib")]))["id"]
        env = client_env(
            CLIENTS, SHOEBOX_URL=url, SHOEBOX_KEY=key["secret"], LIBRARY_ID=lib, EXPECTED="3"
        )
        code, out, err = await run(["node", "sdk-live.mjs"], env, CLIENTS)
        assert code == 0, f"sdk-live.mjs failed:\n{out}\n{err}"
        result = json.loads(out)

    assert set(result["version"]) >= {"major", "minor", "patch"}
    paths = {str(media / "lib" / f"IMG_{i}.jpg") for i in range(3)}
    assert {a["originalPath"] for a in result["uploads"]} == paths
    for asset in result["assets"]:
        assert isinstance(asset["thumbhash"], str) and asset["thumbhash"], asset
    assert {a["id"]: a["thumbhash"] for a in result["assets"]} == {
        a["id"]: a["thumbhash"] for a in result["uploads"]
    }
    library = result["queues"]["library"]
    assert library["queueStatus"] == {"isActive": False, "isPaused": False}
    assert set(library["jobCounts"]) >= {"active", "waiting", "failed"}


async def _sessions(system: System) -> set[str]:
    async with system.ctx.engine.connect() as conn:
        return {str(i) for i in (await conn.execute(text("SELECT id FROM sessions"))).scalars()}


async def _has(listener: Listener, event: str, n: int = 1) -> bool:
    return len(listener.of(event)) >= n
