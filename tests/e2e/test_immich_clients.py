"""Immich's own clients against Shoebox: the `immich` CLI uploads, the `@immich/sdk` scans.

The clients are the npm packages pinned in `immich-clients/package.json` (and its lock),
installed on first use into `immich-clients/node_modules`. The API runs in this test's event
loop under uvicorn on a real TCP port, with the projector and the scanner beside it.

The CLI needs Node.js >= 22 (it uses iterator helpers; its launcher refuses older versions), so
the pinned set includes npm's `node` package, which puts a Node 22 into `node_modules/.bin`;
the clients run with that folder first on PATH, whatever Node runs npm itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.api.app import build_app
from shared.infra import free_port
from tests.factories import jpeg_bytes, make_tree
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import Infra, System, eventually, open_system, run_scanner

pytestmark = pytest.mark.e2e

CLIENTS = Path(__file__).parent / "immich-clients"
PINNED = json.loads((CLIENTS / "package.json").read_text())["dependencies"]


def _installed_version(package: str) -> str | None:
    manifest = CLIENTS / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


@pytest.fixture(scope="session")
def immich_clients() -> Iterator[Path]:
    """The pinned @immich/cli and @immich/sdk, installed with npm if they are not yet."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run Immich's own clients")
    # Test processes running side by side (pytest -n) install once: the first holds the lock,
    # the others then find the pinned versions in place.
    with (CLIENTS / "node_modules.lock").open("w") as installing:
        fcntl.flock(installing, fcntl.LOCK_EX)
        if any(_installed_version(p) != v for p, v in PINNED.items()):
            lock = (CLIENTS / "package-lock.json").exists()
            command = [npm, "ci" if lock else "install", "--no-audit", "--no-fund"]
            result = subprocess.run(
                command, cwd=CLIENTS, capture_output=True, text=True, timeout=600, check=False
            )
            assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    node22 = CLIENTS / "node_modules" / ".bin" / "node"
    assert node22.exists(), (
        "npm did not install Node 22 into node_modules/.bin (were install scripts blocked? "
        "package.json's allowScripts approves the `node` package)"
    )
    yield CLIENTS


def client_env(clients: Path, **extra: str) -> dict[str, str]:
    """PATH with the pinned Node first, plus `extra`."""
    path = f"{clients / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return {"PATH": path, "NO_COLOR": "1", **extra}


def photos(root: Path, count: int) -> dict[str, Path]:
    """`count` distinct JPEGs, half of them in a subfolder, plus a file no client uploads."""
    files: dict[str, bytes | None] = {
        f"{'sub/' if i % 2 else ''}IMG_{i:04d}.jpg": jpeg_bytes((20 + i, 16), (i * 9 % 256, 40, 90))
        for i in range(count)
    }
    files["notes.txt"] = b"not a photo"
    return make_tree(root, files)


@contextlib.asynccontextmanager
async def http_api(system: System) -> AsyncIterator[str]:
    """Serve the API on a free TCP port in this event loop; yields its base URL (…/api)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(system.settings, system.ctx), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve(), name="uvicorn")

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return bool(server.started)

    await eventually(started, 10, f"uvicorn to listen on port {port}")
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def running(
    infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[System, str, str, dict[str, str]]]:
    """A system with the projector, the scanner and the HTTP API; an admin with an API key.
    Yields (system, api url, api key secret, key headers)."""
    async with open_system(infra, tmp_path) as system:
        await system.start("scanner", run_scanner)
        admin = await sign_up_admin(system)
        key = await ok(
            await system.client.post(
                "/api/api-keys", headers=admin, json={"name": "clients", "permissions": ["all"]}
            ),
            201,
        )
        async with http_api(system) as url:
            yield system, url, key["secret"], {"x-api-key": key["secret"]}


async def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run a client without blocking the event loop the API is served from."""
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 180)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


class ImmichCli:
    """`immich …` with its config (auth.yml) in a folder of the test's own."""

    def __init__(self, clients: Path, home: Path) -> None:
        self.entry = clients / "node_modules" / ".bin" / "immich"
        self.cwd = home
        home.mkdir(exist_ok=True)
        self.env = client_env(clients, HOME=str(home), IMMICH_CONFIG_DIR=str(home / "config"))

    async def __call__(self, *args: str) -> str:
        code, out, err = await run([str(self.entry), *args], self.env, self.cwd)
        assert code == 0, f"immich {' '.join(args)} exited {code}:\n{out}\n{err}"
        return out + err


class TestImmichCli:
    async def test_cli_uploads_a_folder_then_finds_only_duplicates(
        self, infra: Infra, tmp_path: Path, immich_clients: Path
    ) -> None:
        folder = tmp_path / "camera"
        files = photos(folder, 20)
        cli = ImmichCli(immich_clients, tmp_path / "home")
        async with running(infra, tmp_path) as (system, url, secret, key):
            out = await cli("login", url, secret)
            assert "Logged in as admin@example.com" in out
            assert (tmp_path / "home" / "config" / "auth.yml").exists()

            out = await cli(
                "upload", "--recursive", "--no-progress", "--concurrency", "4", str(folder)
            )
            assert "Found 20 new files and 0 duplicates" in out, out
            assert "Successfully uploaded 20 new assets" in out, out
            stats = await ok(await system.client.get("/api/assets/statistics", headers=key))
            assert stats == {"images": 20, "videos": 0, "total": 20}

            out = await cli("upload", "--recursive", "--no-progress", str(folder))
            assert "Found 0 new files and 20 duplicates" in out, out
            assert "All assets were already uploaded, nothing to do." in out, out
            stats = await ok(await system.client.get("/api/assets/statistics", headers=key))
            assert stats["total"] == 20

            # Without the pre-check every file is sent, and the server says duplicate.
            out = await cli("upload", "--recursive", "--no-progress", "--skip-hash", str(folder))
            assert "Successfully uploaded 0 new assets" in out, out
            assert "Skipped 20 duplicate assets" in out, out

            # Duplicates still go into albums: the CLI lists, creates and fills one.
            out = await cli(
                "upload", "--recursive", "--no-progress", "--album-name", "Camera", str(folder)
            )
            assert "Successfully created 1 new album" in out, out
            albums = await ok(await system.client.get("/api/albums", headers=key))
            assert [(a["albumName"], a["assetCount"]) for a in albums] == [("Camera", 20)]

            out = await cli("server-info")
            assert re.search(r"Images: 20\s", out) and "Total: 20" in out, out

            search = await ok(
                await system.client.post("/api/search/metadata", headers=key, json={"size": 100})
            )
            names = sorted(a["originalFileName"] for a in search["assets"]["items"])
            assert names == sorted(p.name for n, p in files.items() if n != "notes.txt")


class TestImmichSdk:
    async def test_sdk_creates_validates_and_scans_an_external_library(
        self, infra: Infra, tmp_path: Path, immich_clients: Path
    ) -> None:
        media = tmp_path / "media"
        files = photos(media / "library", 12)
        async with running(infra, tmp_path) as (system, url, secret, key):
            me = await ok(await system.client.get("/api/users/me", headers=key))
            await ok(
                await system.client.put(
                    f"/api/admin/users/{me['id']}", headers=key, json={"externalPath": str(media)}
                )
            )
            env = client_env(
                immich_clients,
                SHOEBOX_URL=url,
                SHOEBOX_KEY=secret,
                OWNER_ID=me["id"],
                IMPORT_PATH=str(media / "library"),
                EXPECTED="12",
            )
            code, out, err = await run(["node", "sdk-library.mjs"], env, immich_clients)
            assert code == 0, f"sdk script failed:\n{out}\n{err}"
            result = json.loads(out)

        assert result["user"] == "admin@example.com"
        assert result["library"]["importPaths"] == [str(media / "library")]
        validation = {p["importPath"]: p for p in result["validation"]["importPaths"]}
        assert validation[str(media / "library")]["isValid"] is True
        assert validation[str(media / "library/does-not-exist")]["isValid"] is False
        assert result["statistics"]["photos"] == 12 and result["statistics"]["total"] == 12
        assert result["total"] == 12
        expected = {str(p) for n, p in files.items() if n != "notes.txt"}
        assert {a["originalPath"] for a in result["assets"]} == expected
        assert {a["libraryId"] for a in result["assets"]} == {result["library"]["id"]}
        assert not any(a["isOffline"] for a in result["assets"])
        assert sum(b["count"] for b in result["buckets"]) == 12
        assert result["markers"] == []

    async def test_sdk_edits_assets_uses_the_trash_and_reads_the_server(
        self, infra: Infra, tmp_path: Path, immich_clients: Path
    ) -> None:
        async with running(infra, tmp_path) as (system, url, secret, key):
            ids = []
            for i in range(3):
                form = {
                    "fileCreatedAt": "2024-05-06T07:08:09Z",
                    "fileModifiedAt": "2024-05-06T07:08:09Z",
                }
                data = jpeg_bytes((20 + i, 16), (i * 70, 40, 90))
                files = {"assetData": (f"IMG_{i}.jpg", data, "application/octet-stream")}
                r = await system.client.post("/api/assets", headers=key, data=form, files=files)
                ids.append((await ok(r, 201))["id"])
            env = client_env(
                immich_clients, SHOEBOX_URL=url, SHOEBOX_KEY=secret, ASSET_IDS=",".join(ids)
            )
            code, out, err = await run(["node", "sdk-assets.mjs"], env, immich_clients)
            assert code == 0, f"sdk script failed:\n{out}\n{err}"
            result = json.loads(out)
            version = await ok(await system.client.get("/api/server/version"))

        a, b, c = ids
        storage = result["storage"]
        assert storage["diskSizeRaw"] > 0 and storage["diskSize"].endswith("iB")
        assert 0 <= storage["diskUsagePercentage"] <= 100
        assert result["statistics"]["photos"] == 3 and len(result["statistics"]["usageByUser"]) == 1
        release = "v{major}.{minor}.{patch}".format(**version)
        assert result["versionCheck"]["releaseVersion"] == release
        assert [h["version"] for h in result["versionHistory"]] == [release]
        assert result["updated"] == {
            "isFavorite": True,
            "isArchived": True,
            "visibility": "archive",
            "description": "Dinner",
            "rating": 4,
        }
        assert result["favorites"] == sorted(ids) and result["archived"] == [a]
        assert result["refused"]["status"] == 400
        refused = result["refused"]["message"]
        assert "rating must not be greater than 5" in (
            "; ".join(refused) if isinstance(refused, list) else refused
        )
        assert result["trashed"] is True and result["withoutTrashed"] == sorted([a, c])
        assert result["restoredOne"] == {"count": 1}
        assert result["restoredAll"] == {"count": 2}
        assert result["emptied"] == {"count": 1}
        assert result["gone"] == 400
        assert result["left"] == sorted([a, b])


async def sdk_calls(
    clients: Path, url: str, secret: str, calls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run `calls` through @immich/sdk (immich-clients/sdk-calls.mjs): each call's value as
    {"ok": …}, or the SDK's reading of its error as {"status", "data"}."""
    env = client_env(clients, SHOEBOX_URL=url, SHOEBOX_KEY=secret, CALLS=json.dumps(calls))
    code, out, err = await run(["node", "sdk-calls.mjs"], env, clients)
    assert code == 0, f"sdk-calls.mjs failed:\n{out}\n{err}"
    results: list[dict[str, Any]] = json.loads(out)
    assert len(results) == len(calls)
    return results


def bad_request(result: dict[str, Any]) -> Any:
    """The message of a 400 as the SDK parsed it, checking Immich's error body around it."""
    assert result.get("status") == 400, result
    data = result["data"]
    if isinstance(data, str):  # the SDK reads the body of a route without a JSON answer as text
        data = json.loads(data)
    assert data["error"] == "Bad Request" and data["statusCode"] == 400, data
    assert isinstance(data["correlationId"], str) and data["correlationId"], data
    return data["message"]


class TestImmichSdkCompatibility:
    """What Immich's own e2e specs check, through the SDK as a third-party client calls it."""

    async def test_validation_access_and_search_answer_as_immich(
        self, infra: Infra, tmp_path: Path, immich_clients: Path
    ) -> None:
        media = tmp_path / "media"
        make_tree(
            media / "temp",
            {
                "directoryA/assetA.jpg": jpeg_bytes((20, 16), (10, 40, 90)),
                "directoryB/assetB.jpg": jpeg_bytes((21, 16), (90, 40, 10)),
            },
        )
        async with running(infra, tmp_path) as (system, url, secret, key):
            me = await ok(await system.client.get("/api/users/me", headers=key))
            await ok(
                await system.client.put(
                    f"/api/admin/users/{me['id']}", headers=key, json={"externalPath": f"{media}/"}
                )
            )
            user, user_headers = await create_user(system, key, "other@example.com")
            other = await ok(
                await system.client.post(
                    "/api/api-keys",
                    headers=user_headers,
                    json={"name": "o", "permissions": ["all"]},
                ),
                201,
            )
            temp = str(media / "temp")
            first = await sdk_calls(
                immich_clients,
                url,
                secret,
                [
                    # Immich before v1.99: ownerId left out, the caller's own library.
                    {
                        "fn": "createLibrary",
                        "args": {
                            "createLibraryDto": {
                                "importPaths": [f"{temp}/"],
                                "exclusionPatterns": ["**/directoryA"],
                            }
                        },
                    },
                    {
                        "fn": "createLibrary",
                        "args": {"createLibraryDto": {"importPaths": [temp, temp]}},
                    },
                    {
                        "fn": "createLibrary",
                        "args": {"createLibraryDto": {"exclusionPatterns": ["**/x", "**/x"]}},
                    },
                    {"fn": "createLibrary", "args": {"createLibraryDto": {"name": ""}}},
                    {"fn": "createLibrary", "args": {"createLibraryDto": {"importPaths": [""]}}},
                    {"fn": "getLibrary", "args": {"id": "not-a-uuid"}},
                    {"fn": "createLibrary", "args": {"createLibraryDto": {"ownerId": user["id"]}}},
                ],
            )
            library = first[0]["ok"]
            assert library["ownerId"] == me["id"] and library["importPaths"] == [temp]
            assert bad_request(first[1]) == ["All importPaths's elements must be unique"]
            assert bad_request(first[2]) == ["All exclusionPatterns's elements must be unique"]
            assert bad_request(first[3]) == ["name should not be empty"]
            assert bad_request(first[4]) == ["each value in importPaths should not be empty"]
            assert bad_request(first[5]) == ["id must be a UUID"]
            pathless = first[6]["ok"]  # the admin made one for a user with no external path

            lib = library["id"]
            second = await sdk_calls(
                immich_clients,
                url,
                secret,
                [
                    {
                        "fn": "validate",
                        "args": {
                            "id": lib,
                            "validateLibraryDto": {"importPaths": ["relative/path", temp]},
                        },
                    },
                    {
                        "fn": "validate",
                        "args": {
                            "id": pathless["id"],
                            "validateLibraryDto": {"importPaths": [temp]},
                        },
                    },
                    {"fn": "getLibrary", "args": {"id": lib}, "key": other["secret"]},
                    {
                        "fn": "updateLibrary",
                        "args": {"id": lib, "updateLibraryDto": {"name": "x"}},
                        "key": other["secret"],
                    },
                    {"fn": "deleteLibrary", "args": {"id": lib}, "key": other["secret"]},
                    {"fn": "scanLibrary", "args": {"id": lib}},
                ],
            )
            (relative, good) = second[0]["ok"]["importPaths"]
            assert relative == {
                "importPath": "relative/path",
                "isValid": False,
                "message": f"Import path must be absolute, try {os.getcwd()}/relative/path",
            }
            assert good == {"importPath": temp, "isValid": True}
            assert bad_request(second[1]) == "User has no external path set"
            assert bad_request(second[2]) == "Not found or no library.read access"
            assert bad_request(second[3]) == "Not found or no library.update access"
            assert bad_request(second[4]) == "Not found or no library.delete access"

            async def scanned() -> bool:
                state = await ok(await system.client.get(f"/api/libraries/{lib}/scan", headers=key))
                return bool(state["state"] == "finished")

            await eventually(scanned, 30, "the SDK's scan to finish")
            third = await sdk_calls(
                immich_clients,
                url,
                secret,
                [
                    {"fn": "searchAssets", "args": {"metadataSearchDto": {"libraryId": lib}}},
                    {
                        "fn": "searchAssets",
                        "args": {
                            "metadataSearchDto": {"libraryId": lib, "model": "No Such Camera"}
                        },
                    },
                    {
                        "fn": "searchAssets",
                        "args": {"metadataSearchDto": {"originalFileName": "assetb"}},
                    },
                    {"fn": "searchAssets", "args": {"metadataSearchDto": {"cameraModel": "X"}}},
                    {"fn": "getAllLibraries", "args": {}},
                ],
            )
        found = third[0]["ok"]["assets"]
        # `**/directoryA` kept that folder's file out, as Immich's crawler does.
        assert [a["originalPath"] for a in found["items"]] == [f"{temp}/directoryB/assetB.jpg"]
        assert third[1]["ok"]["assets"]["count"] == 0
        assert [a["originalFileName"] for a in third[2]["ok"]["assets"]["items"]] == ["assetB.jpg"]
        assert bad_request(third[3]) == ["property cameraModel should not exist"]
        uploads = [x for x in third[4]["ok"] if x["type"] == "UPLOAD"]
        assert {x["name"] for x in uploads} == {"Default Library"}
