"""Uploads, duplicates and the checks on an upload, through the real API."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from tests.api.assets import (
    CREATED,
    MULTIPART_TAIL,
    MULTIPART_TYPE,
    asset_by_path,
    external_photos,
    leftovers,
    multipart_head,
    photo,
    sha1_b64,
    stats,
    upload,
    uploaded,
)
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import System


class TestUpload:
    async def test_upload_creates_asset_when_bytes_are_new(self, system: System) -> None:
        admin = await sign_up_admin(system)
        data = photo(1)
        r = await upload(system, admin, data, "IMG_0001.JPG")
        body = await ok(r, 201)
        assert body["status"] == "created"
        asset = await ok(await system.client.get(f"/api/assets/{body['id']}", headers=admin))
        assert asset["originalFileName"] == "IMG_0001.JPG"
        assert asset["checksum"] == sha1_b64(data)
        assert asset["libraryId"] is None and asset["type"] == "IMAGE"
        assert asset["deviceId"] == "pytest" and asset["fileCreatedAt"] == CREATED
        me = await ok(await system.client.get("/api/users/me", headers=admin))
        sha = hashlib.sha1(data).hexdigest()
        assert leftovers(system) == [f"{me['id']}/{sha[:2]}/{sha[2:4]}/{body['id']}.jpg"]
        assert asset["originalPath"] == leftovers(system)[0]

    async def test_same_bytes_again_are_a_duplicate_of_the_first_asset(
        self, system: System
    ) -> None:
        admin = await sign_up_admin(system)
        first = await uploaded(system, admin, photo(2), "a.jpg")
        r = await upload(system, admin, photo(2), "renamed.jpg")
        assert await ok(r, 200) == {"id": first, "status": "duplicate"}
        assert len(leftovers(system)) == 1  # no temp file stays behind
        assert (await stats(system, admin))["total"] == 1

    async def test_same_bytes_from_another_user_make_their_own_asset(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        mine = await uploaded(system, admin, photo(3))
        theirs = await uploaded(system, bob, photo(3))
        assert mine != theirs
        assert (await stats(system, bob))["total"] == 1

    async def test_checksum_header_answers_duplicate_before_storing(self, system: System) -> None:
        admin = await sign_up_admin(system)
        first = await uploaded(system, admin, photo(4))
        for checksum in (hashlib.sha1(photo(4)).hexdigest(), sha1_b64(photo(4))):
            r = await upload(system, admin, photo(4), extra_headers={"x-immich-checksum": checksum})
            assert await ok(r, 200) == {"id": first, "status": "duplicate"}

    async def test_checksum_header_that_does_not_match_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await upload(
            system,
            admin,
            photo(5),
            extra_headers={"x-immich-checksum": hashlib.sha1(b"other").hexdigest()},
        )
        assert r.status_code == 400
        assert "x-immich-checksum" in r.json()["message"]
        assert leftovers(system) == []

    async def test_unsupported_file_type_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await upload(system, admin, b"just some text", "notes.txt")
        assert r.status_code == 400
        assert r.json()["message"].startswith("Unsupported file type")
        assert leftovers(system) == []

    async def test_empty_file_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await upload(system, admin, b"", "empty.jpg")
        assert r.status_code == 400
        assert "empty" in r.json()["message"]
        assert leftovers(system) == []
        assert (await stats(system, admin))["total"] == 0

    async def test_truncated_multipart_is_refused_and_leaves_nothing(self, system: System) -> None:
        admin = await sign_up_admin(system)
        body = multipart_head("cut.jpg") + photo(6)[:100]  # no closing boundary
        r = await system.client.post(
            "/api/assets", content=body, headers={**admin, **MULTIPART_TYPE}
        )
        assert r.status_code == 400
        assert "incomplete" in r.json()["message"]
        assert leftovers(system) == []
        assert (await stats(system, admin))["total"] == 0

    async def test_garbage_body_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/assets", content=b"\x00" * 1000, headers={**admin, **MULTIPART_TYPE}
        )
        assert r.status_code == 400
        assert leftovers(system) == []

    async def test_body_that_is_not_multipart_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post("/api/assets", json={"assetData": "x"}, headers=admin)
        assert r.status_code == 400
        assert "multipart" in r.json()["message"]

    async def test_missing_file_and_bad_dates_are_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/assets",
            headers=admin,
            files={"other": ("x.jpg", photo(7), "image/jpeg")},
            data={"fileCreatedAt": CREATED, "fileModifiedAt": CREATED},
        )
        assert r.status_code == 400 and r.json()["message"] == "assetData is required"
        r = await upload(system, admin, photo(7), fields={"fileCreatedAt": "yesterday"})
        assert r.status_code == 400
        assert "fileCreatedAt must be a valid ISO 8601 date string" in r.json()["message"]
        assert leftovers(system) == []

    async def test_upload_requires_authentication(self, system: System) -> None:
        await sign_up_admin(system)
        system.client.cookies.clear()  # login left Immich's access-token cookie in the jar
        r = await upload(system, {}, photo(8))
        assert r.status_code == 401

    async def test_api_key_without_upload_permission_is_forbidden(self, system: System) -> None:
        admin = await sign_up_admin(system)
        key = await ok(
            await system.client.post(
                "/api/api-keys",
                headers=admin,
                json={"name": "read only", "permissions": ["asset.read"]},
            ),
            201,
        )
        r = await upload(system, {"x-api-key": key["secret"]}, photo(9))
        assert r.status_code == 403
        assert r.json()["message"] == "Missing required permission: asset.upload"

    async def test_filename_field_and_favorite_are_recorded(self, system: System) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(
            system,
            admin,
            photo(10),
            "x.heic.jpg",
            fields={"filename": "holiday.jpg", "isFavorite": "true"},
        )
        asset = await ok(await system.client.get(f"/api/assets/{asset_id}", headers=admin))
        assert asset["originalFileName"] == "holiday.jpg" and asset["isFavorite"] is True

    async def test_sidecar_is_stored_next_to_the_original(self, system: System) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(system, admin, photo(11), sidecar=b"<x:xmpmeta/>")
        files = leftovers(system)
        assert len(files) == 2 and files[1] == files[0] + ".xmp"
        assert files[0].endswith(f"{asset_id}.jpg")

    async def test_upload_after_deletion_starts_a_new_life(self, system: System) -> None:
        admin = await sign_up_admin(system)
        first = await uploaded(system, admin, photo(12))
        await ok(
            await system.client.request(
                "DELETE", "/api/assets", headers=admin, json={"ids": [first], "force": True}
            ),
            204,
        )
        assert leftovers(system) == []
        again = await uploaded(system, admin, photo(12))
        assert again == first
        assert (await stats(system, admin))["total"] == 1
        assert len(leftovers(system)) == 1

    async def test_same_bytes_in_an_external_library_are_not_a_duplicate(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, _, paths = await external_photos(system, admin, media_root, {"a.jpg": photo(13)})
        external = await asset_by_path(system, user, paths["a.jpg"])
        check = await ok(
            await system.client.post(
                "/api/assets/bulk-upload-check",
                headers=user,
                json={"assets": [{"id": "a", "checksum": sha1_b64(photo(13))}]},
            )
        )
        assert check["results"] == [{"id": "a", "action": "accept"}]
        uploaded_id = await uploaded(system, user, photo(13))
        assert uploaded_id != external["id"]
        assert (await stats(system, user))["total"] == 2

    @pytest.mark.slow
    async def test_large_upload_streams_with_flat_memory(self, system: System) -> None:
        size_mb = 2048  # a 2 GB video
        free = shutil.disk_usage(system.settings.upload_path.parent).free
        if free < (size_mb << 20) * 3:
            pytest.skip(f"needs {3 * size_mb} MiB of free disk, {free >> 20} MiB here")
        admin = await sign_up_admin(system)
        process = psutil.Process()
        digest = hashlib.sha1()
        block = os.urandom(1 << 20)
        peak = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal peak
            yield multipart_head("big.mp4")
            for i in range(size_mb):
                # Mostly one repeated block, a counter keeps every MiB different.
                chunk = i.to_bytes(8, "big") + block[8:]
                digest.update(chunk)
                yield chunk
                peak = max(peak, process.memory_info().rss)
            yield MULTIPART_TAIL

        baseline = process.memory_info().rss
        r = await system.client.post(
            "/api/assets", content=body(), headers={**admin, **MULTIPART_TYPE}
        )
        created = await ok(r, 201)
        peak = max(peak, process.memory_info().rss)
        assert peak - baseline < 50 * 1024 * 1024, f"RSS grew by {(peak - baseline) >> 20} MiB"
        asset = await ok(await system.client.get(f"/api/assets/{created['id']}", headers=admin))
        assert asset["type"] == "VIDEO"
        assert asset["checksum"] == base64.b64encode(digest.digest()).decode()
        [stored] = leftovers(system)
        assert (system.settings.upload_path / stored).stat().st_size == size_mb << 20


class TestUploadChecks:
    async def test_bulk_check_rejects_what_the_caller_uploaded(self, system: System) -> None:
        admin = await sign_up_admin(system)
        first = await uploaded(system, admin, photo(20))
        body = await ok(
            await system.client.post(
                "/api/assets/bulk-upload-check",
                headers=admin,
                json={
                    "assets": [
                        {"id": "hex", "checksum": hashlib.sha1(photo(20)).hexdigest()},
                        {"id": "b64", "checksum": sha1_b64(photo(20))},
                        {"id": "new", "checksum": hashlib.sha1(photo(21)).hexdigest()},
                    ]
                },
            )
        )
        duplicate = {
            "action": "reject",
            "reason": "duplicate",
            "assetId": first,
            "isTrashed": False,
        }
        assert body["results"] == [
            {"id": "hex", **duplicate},
            {"id": "b64", **duplicate},
            {"id": "new", "action": "accept"},
        ]

    async def test_bulk_check_is_per_user(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        await uploaded(system, admin, photo(22))
        body = await ok(
            await system.client.post(
                "/api/assets/bulk-upload-check",
                headers=bob,
                json={"assets": [{"id": "x", "checksum": sha1_b64(photo(22))}]},
            )
        )
        assert body["results"] == [{"id": "x", "action": "accept"}]

    async def test_bulk_check_refuses_a_malformed_checksum(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/assets/bulk-upload-check",
            headers=admin,
            json={"assets": [{"id": "x", "checksum": "nope"}]},
        )
        assert r.status_code == 400

    async def test_exist_lists_known_device_asset_ids(self, system: System) -> None:
        admin = await sign_up_admin(system)
        await uploaded(system, admin, photo(23), "a.jpg", fields={"deviceAssetId": "dev-a"})
        body = await ok(
            await system.client.post(
                "/api/assets/exist",
                headers=admin,
                json={"deviceAssetIds": ["dev-a", "dev-b"], "deviceId": "pytest"},
            )
        )
        assert body == {"existingIds": ["dev-a"]}
