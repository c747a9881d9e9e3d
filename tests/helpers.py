"""HTTP helpers for tests: sign up, log in, create users, with Immich's request shapes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js import api

from shared import events as ev
from shared.ids import folder_id
from shared.settings import Settings
from tests.system import Infra, System, open_system, run_metadata, run_scanner

# The shared corpus of real camera files, beside the repository (../shared).
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "exif-samples"

ADMIN = {"email": "admin@example.com", "password": "admin-pass", "name": "Admin"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


async def sign_up_admin(system: System) -> dict[str, str]:
    """Admin sign-up + login; returns auth headers."""
    await ok(await system.client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    return await login(system, ADMIN["email"], ADMIN["password"])


async def login(system: System, email: str, password: str) -> dict[str, str]:
    body = await ok(
        await system.client.post("/api/auth/login", json={"email": email, "password": password}),
        201,
    )
    # Login also sets Immich's cookie; keep the shared client anonymous so that every request
    # is authenticated only by the headers a test passes.
    system.client.cookies.clear()
    return bearer(body["accessToken"])


async def create_user(
    system: System, admin: dict[str, str], email: str, external_path: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """An admin creates a user (optionally with an external path); returns (user, headers)."""
    payload: dict[str, Any] = {
        "email": email,
        "password": "pw-" + email,
        "name": email.split("@")[0],
    }
    user = await ok(await system.client.post("/api/admin/users", json=payload, headers=admin), 201)
    if external_path is not None:
        user = await ok(
            await system.client.put(
                f"/api/admin/users/{user['id']}",
                json={"externalPath": external_path},
                headers=admin,
            )
        )
    return user, await login(system, email, "pw-" + email)


async def external_library(
    system: System, admin: dict[str, str], owner_id: str, import_paths: list[str], **extra: Any
) -> dict[str, Any]:
    """Create an external library through the API."""
    body = {"ownerId": owner_id, "importPaths": import_paths, **extra}
    return await ok(await system.client.post("/api/libraries", json=body, headers=admin), 201)  # type: ignore[no-any-return]


async def scan(
    system: System,
    headers: dict[str, str],
    library_id: str,
    body: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Request a scan and wait until it has finished and its events are projected."""
    from tests.system import eventually

    before = await ok(await system.client.get(f"/api/libraries/{library_id}/scan", headers=headers))
    r = (
        await system.client.post(f"/api/libraries/{library_id}/scan", headers=headers, json=body)
        if body is not None
        else await system.client.post(f"/api/libraries/{library_id}/scan", headers=headers)
    )
    assert r.status_code == 204, r.text
    state: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal state
        state = await ok(
            await system.client.get(f"/api/libraries/{library_id}/scan", headers=headers)
        )
        return state["scanId"] != before.get("scanId") and state["state"] == "finished"

    await eventually(finished, timeout, f"scan of library {library_id} to finish")
    # Everything the scan published is before LibraryScanFinished in the stream, so it is
    # projected too once the run shows finished.
    return state


async def assets_of(
    system: System, headers: dict[str, str], library_id: str, **filters: Any
) -> list[dict[str, Any]]:
    """All assets of a library through POST /api/search/metadata, following pages."""
    items: list[dict[str, Any]] = []
    page: int | None = 1
    while page:
        body = await ok(
            await system.client.post(
                "/api/search/metadata",
                headers=headers,
                json={"libraryId": library_id, "page": page, "size": 1000, **filters},
            )
        )
        items += body["assets"]["items"]
        page = int(body["assets"]["nextPage"]) if body["assets"]["nextPage"] else None
    return items


async def assets_read(
    system: System, headers: dict[str, str], library_id: str, n: int, **filters: Any
) -> list[dict[str, Any]]:
    """The library's assets once there are n and the metadata service has read every one."""
    from tests.system import eventually

    items: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal items
        items = await assets_of(system, headers, library_id, **filters)
        return len(items) == n and all(a["metadataStatus"] != "pending" for a in items)

    await eventually(done, 60, f"metadata of {n} assets")
    return items


@dataclass
class MediaSystem:
    """A running system with an admin and a user who may use the folder `root`."""

    system: System
    admin: dict[str, str]
    owner: dict[str, Any]
    owner_headers: dict[str, str]
    root: Path


@contextlib.asynccontextmanager
async def media_system(
    infra: Infra,
    tmp_path: Path,
    metadata: Callable[[Settings, asyncio.Event], Awaitable[None]] = run_metadata,
) -> AsyncIterator[MediaSystem]:
    """Projector, scanner and metadata service running; `root` (tmp_path/media) starts empty."""
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        await system.start("metadata", metadata)
        root = tmp_path / "media"
        root.mkdir()
        admin = await sign_up_admin(system)
        owner, headers = await create_user(system, admin, "owner@example.com", str(root))
        yield MediaSystem(system, admin, owner, headers, root)


async def births_of(system: System, library_id: uuid.UUID, real_path: str) -> list[ev.FolderFile]:
    """Every birth of the file at `real_path` on the stream: its entries in the FilesDiscovered
    stored on its folder's subject (decision 0030), oldest first."""
    nats = system.settings.nats
    folder, _, name = real_path.rpartition("/")
    subject = nats.subject("events", "folder", str(folder_id(library_id, folder or "/")))
    js = system.ctx.nc.jetstream()
    sub = await js.pull_subscribe(
        subject,
        stream=nats.name("EVENTS"),
        config=api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.NONE
        ),
    )
    out: list[ev.FolderFile] = []
    try:
        while (await sub.consumer_info()).num_pending:
            for msg in await sub.fetch(100, timeout=5):
                event = ev.decode(msg.data)
                assert isinstance(event, ev.FilesDiscovered), event
                out += [f for f in event.files if f.name == name]
    finally:
        await sub.unsubscribe()
    return out


async def asset_subject_count(system: System, asset_id: uuid.UUID) -> int:
    """Messages stored on an asset's own subject."""
    nats = system.settings.nats
    info = await system.ctx.nc.jetstream().stream_info(
        nats.name("EVENTS"), subjects_filter=nats.subject("events", "asset", str(asset_id))
    )
    return sum((info.state.subjects or {}).values())
