"""Uploads, duplicates, media, deletion and statistics of assets through the real API."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from services.api.media import thumb_version
from services.metadata.handlers import thumbnail_keys
from shared import events as ev
from shared.metadata import AssetMetadata
from tests.factories import jpeg_bytes, make_tree
from tests.fsrace import swapping
from tests.helpers import create_user, external_library, ok, scan, sign_up_admin
from tests.system import System, run_scanner

BOUNDARY = "shoebox-test-boundary-7f3a"
CREATED = "2024-05-06T07:08:09.000Z"


def photo(seed: int) -> bytes:
    """A small JPEG whose bytes differ for every seed."""
    return jpeg_bytes((16 + seed % 7, 12), (seed % 256, (seed // 256) % 256, 99))


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


async def upload(
    system: System,
    headers: dict[str, str],
    data: bytes,
    name: str = "photo.jpg",
    *,
    created: str = CREATED,
    fields: dict[str, str] | None = None,
    extra_headers: dict[str, str] | None = None,
    sidecar: bytes | None = None,
) -> Any:
    """POST /api/assets as Immich's clients do (multipart, file part `assetData`)."""
    form = {
        "deviceAssetId": f"{name}-{len(data)}",
        "deviceId": "pytest",
        "fileCreatedAt": created,
        "fileModifiedAt": created,
        "isFavorite": "false",
        **(fields or {}),
    }
    files: dict[str, Any] = {"assetData": (name, data, "application/octet-stream")}
    if sidecar is not None:
        files["sidecarData"] = (name + ".xmp", sidecar, "application/xml")
    return await system.client.post(
        "/api/assets", data=form, files=files, headers={**headers, **(extra_headers or {})}
    )


async def uploaded(
    system: System, headers: dict[str, str], data: bytes, name: str = "photo.jpg", **kw: Any
) -> str:
    body = await ok(await upload(system, headers, data, name, **kw), 201)
    assert body["status"] == "created"
    return str(body["id"])


def multipart_head(filename: str, fields: dict[str, str] | None = None) -> bytes:
    """Everything of a multipart body before the file's bytes."""
    parts = []
    for key, value in {
        "fileCreatedAt": CREATED,
        "fileModifiedAt": CREATED,
        **(fields or {}),
    }.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="assetData"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    return "".join(parts).encode()


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MULTIPART_TYPE = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def leftovers(system: System) -> list[str]:
    """Files in the upload location (temp files included)."""
    root = system.settings.upload_path
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def stats(system: System, headers: dict[str, str]) -> dict[str, int]:
    return await ok(await system.client.get("/api/assets/statistics", headers=headers))  # type: ignore[no-any-return]


async def extract(
    system: System,
    asset_id: str,
    *,
    thumbnail: bytes | None = None,
    preview: bytes | None = None,
    **meta: Any,
) -> None:
    """Act as the metadata service: store thumbnails and record MetadataExtracted."""
    store = system.ctx.thumbs
    assert store is not None
    thumb_key = preview_key = None
    if thumbnail is not None and preview is not None:
        thumb_key, preview_key = thumbnail_keys(uuid.UUID(asset_id))
        await store.put(thumb_key, thumbnail)
        await store.put(preview_key, preview)
    metadata = AssetMetadata(
        checksum=meta.pop("checksum", "0" * 40),
        file_size=1,
        file_modified_at=datetime(2024, 1, 1, tzinfo=UTC),
        **meta,
    )
    seq = await system.ctx.bus.publish(
        ev.MetadataExtracted(
            stream_id=uuid.UUID(asset_id),
            metadata=metadata,
            thumbnail_key=thumb_key,
            preview_key=preview_key,
        )
    )
    await system.ctx.settle(seq)


async def external_photos(
    system: System, admin: dict[str, str], media: Path, files: dict[str, bytes | None]
) -> tuple[dict[str, Any], dict[str, str], str, dict[str, Path]]:
    """A user with an external library over `media` holding `files`, scanned.
    Returns (user, user headers, library id, name -> path)."""
    await system.start("scanner", run_scanner)
    user, headers = await create_user(system, admin, "ext@example.com", str(media))
    paths = make_tree(media, files)
    lib = await external_library(system, admin, user["id"], [str(media)])
    await scan(system, admin, lib["id"])
    return user, headers, str(lib["id"]), paths


async def asset_by_path(system: System, headers: dict[str, str], path: Path) -> dict[str, Any]:
    body = await ok(
        await system.client.post(
            "/api/search/metadata", headers=headers, json={"originalPath": str(path)}
        )
    )
    items = body["assets"]["items"]
    assert len(items) == 1, items
    return items[0]  # type: ignore[no-any-return]


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


class TestMedia:
    async def test_original_is_streamed_with_its_content_type(self, system: System) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(system, admin, photo(30), "été.jpg")
        r = await system.client.get(f"/api/assets/{asset_id}/original", headers=admin)
        assert r.status_code == 200 and r.content == photo(30)
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["content-length"] == str(len(photo(30)))
        assert "filename*=UTF-8''%C3%A9t%C3%A9.jpg" in r.headers["content-disposition"]

    async def test_unknown_asset_is_not_found_or_no_access(self, system: System) -> None:
        admin = await sign_up_admin(system)
        for suffix in ("", "/original", "/thumbnail"):
            r = await system.client.get(f"/api/assets/{uuid.uuid4()}{suffix}", headers=admin)
            assert r.status_code == 400
            assert r.json()["message"] == "Not found or no asset.read access"

    async def test_another_users_asset_is_not_found_or_no_access(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        asset_id = await uploaded(system, admin, photo(31))
        for suffix in ("", "/original", "/thumbnail"):
            r = await system.client.get(f"/api/assets/{asset_id}{suffix}", headers=bob)
            assert r.status_code == 400
            assert r.json()["message"] == "Not found or no asset.read access"

    async def test_invalid_asset_id_is_a_validation_error(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.get("/api/assets/not-a-uuid/original", headers=admin)
        assert r.status_code in (400, 404)

    async def test_thumbnail_is_404_until_generated_then_streamed(self, system: System) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(system, admin, photo(32))
        r = await system.client.get(f"/api/assets/{asset_id}/thumbnail", headers=admin)
        assert r.status_code == 404
        assert "thumbnail" in r.json()["message"]
        thumbnail = b"\xff\xd8\xff" + os.urandom(300_000)  # spans several object-store chunks
        preview = photo(33)
        await extract(
            system,
            asset_id,
            thumbnail=thumbnail,
            preview=preview,
            checksum=hashlib.sha1(photo(32)).hexdigest(),
        )
        r = await system.client.get(f"/api/assets/{asset_id}/thumbnail", headers=admin)
        assert r.status_code == 200 and r.content == thumbnail
        assert r.headers["content-type"] == "image/jpeg"
        r = await system.client.get(f"/api/assets/{asset_id}/thumbnail?size=preview", headers=admin)
        assert r.status_code == 200 and r.content == preview
        assert r.headers["content-type"] == "image/jpeg"
        r = await system.client.get(f"/api/assets/{asset_id}/thumbnail?size=huge", headers=admin)
        assert r.status_code == 400

    async def test_thumbnail_is_immutable_by_its_version_and_revalidated_by_its_etag(
        self, system: System
    ) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(system, admin, photo(35))
        checksum = hashlib.sha1(photo(35)).hexdigest()
        await extract(system, asset_id, thumbnail=photo(36), preview=photo(37), checksum=checksum)
        info = await ok(await system.client.get(f"/api/assets/{asset_id}", headers=admin))
        version = thumb_version(info["updatedAt"])
        url = f"/api/assets/{asset_id}/thumbnail"
        # Immich's clients ask without a version: a day, as before.
        plain = await system.client.get(url, headers=admin)
        assert plain.status_code == 200 and "immutable" not in plain.headers["cache-control"]
        assert "max-age=86400" in plain.headers["cache-control"]
        versioned = await system.client.get(f"{url}?c={version}", headers=admin)
        assert versioned.content == photo(36)
        assert "max-age=31536000, immutable" in versioned.headers["cache-control"]
        etag = versioned.headers["etag"]
        assert plain.headers["etag"] == etag
        again = await system.client.get(url, headers={**admin, "if-none-match": etag})
        assert again.status_code == 304 and again.content == b""
        preview = await system.client.get(f"{url}?size=preview&c={version}", headers=admin)
        assert preview.content == photo(37) and preview.headers["etag"] != etag
        # New renditions come with a new version: the old URL is no longer immutable, the old
        # ETag no longer matches.
        await extract(system, asset_id, thumbnail=photo(38), preview=photo(39), checksum=checksum)
        stale = await system.client.get(f"{url}?c={version}", headers=admin)
        assert stale.content == photo(38) and "immutable" not in stale.headers["cache-control"]
        changed = await system.client.get(url, headers={**admin, "if-none-match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag

    async def test_external_original_is_read_while_online_only(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, lib, paths = await external_photos(system, admin, media_root, {"a.jpg": photo(34)})
        asset = await asset_by_path(system, user, paths["a.jpg"])
        r = await system.client.get(f"/api/assets/{asset['id']}/original", headers=user)
        assert r.status_code == 200 and r.content == photo(34)
        paths["a.jpg"].unlink()
        await scan(system, admin, lib)
        r = await system.client.get(f"/api/assets/{asset['id']}/original", headers=user)
        assert r.status_code == 400
        assert "offline" in r.json()["message"]

    async def test_external_original_behind_a_swapped_symlink_is_refused(
        self, system: System, media_root: Path, tmp_path: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, _, paths = await external_photos(system, admin, media_root, {"a.jpg": photo(35)})
        asset = await asset_by_path(system, user, paths["a.jpg"])
        secret = tmp_path / "secret.jpg"
        secret.write_bytes(b"secret")
        paths["a.jpg"].unlink()
        paths["a.jpg"].symlink_to(secret)  # after the scan: the asset still looks online
        r = await system.client.get(f"/api/assets/{asset['id']}/original", headers=user)
        assert r.status_code == 404
        assert b"secret" not in r.content

    @pytest.mark.parametrize("swap", ["file", "folder"])
    async def test_no_outside_byte_is_served_while_names_are_swapped(
        self, system: System, media_root: Path, tmp_path: Path, swap: str
    ) -> None:
        """The attack of the security issue: the asset's file, or its folder, trades places
        with a symlink to a file outside the fence (RENAME_EXCHANGE in a tight loop) while the
        owner downloads it again and again."""
        admin = await sign_up_admin(system)
        _, user, _, paths = await external_photos(
            system, admin, media_root, {"album/a.jpg": photo(36)}
        )
        asset = await asset_by_path(system, user, paths["album/a.jpg"])
        outside = tmp_path / "outside"
        (outside / "album").mkdir(parents=True)
        secret = b"SECRET" * 100
        (outside / "album" / "a.jpg").write_bytes(secret)
        if swap == "file":
            name, bait = paths["album/a.jpg"], paths["album/a.jpg"].with_name("bait")
            bait.symlink_to(outside / "album" / "a.jpg")
        else:
            name, bait = paths["album/a.jpg"].parent, media_root / "bait"
            bait.symlink_to(outside / "album")
        served: list[bytes] = []
        with swapping(str(name), str(bait)):
            while len(served) < 300 or photo(36) not in served:
                assert len(served) < 5000, "the photo itself was never served"
                r = await system.client.get(f"/api/assets/{asset['id']}/original", headers=user)
                assert r.status_code in (200, 404), r.text
                served.append(r.content if r.status_code == 200 else b"")
        assert not any(b"SECRET" in body for body in served)


class TestDelete:
    async def test_deleting_uploads_removes_assets_and_files(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a = await uploaded(system, admin, photo(40))
        b = await uploaded(system, admin, photo(41))
        r = await system.client.request(
            "DELETE", "/api/assets", headers=admin, json={"ids": [a], "force": True}
        )
        assert r.status_code == 204
        r = await system.client.get(f"/api/assets/{a}", headers=admin)
        assert r.status_code == 400
        assert len(leftovers(system)) == 1 and b in leftovers(system)[0]
        assert (await stats(system, admin))["total"] == 1

    async def test_deleting_right_after_metadata_landed_still_works(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a = await uploaded(system, admin, photo(42))
        # The delete reads last_seq, then metadata lands: the removal retries on the new seq.
        await system.ctx.bus.publish(ev.MetadataFailed(stream_id=uuid.UUID(a), reason="x"))
        await ok(
            await system.client.request(
                "DELETE", "/api/assets", headers=admin, json={"ids": [a], "force": True}
            ),
            204,
        )
        assert (await stats(system, admin))["total"] == 0

    async def test_deleting_an_external_asset_is_refused(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, _, paths = await external_photos(system, admin, media_root, {"a.jpg": None})
        asset = await asset_by_path(system, user, paths["a.jpg"])
        r = await system.client.request(
            "DELETE", "/api/assets", headers=user, json={"ids": [asset["id"]]}
        )
        assert r.status_code == 400
        assert "never deletes files of external libraries" in r.json()["message"]
        assert paths["a.jpg"].exists()
        await ok(await system.client.get(f"/api/assets/{asset['id']}", headers=user))

    async def test_deleting_someone_elses_or_unknown_asset_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        mine = await uploaded(system, admin, photo(43))
        for ids in ([mine], [str(uuid.uuid4())]):
            r = await system.client.request("DELETE", "/api/assets", headers=bob, json={"ids": ids})
            assert r.status_code == 400
            assert r.json()["message"] == "Not found or no asset.delete access"
        assert (await stats(system, admin))["total"] == 1


class TestStatistics:
    async def test_statistics_count_images_and_videos_of_the_caller(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, _, _ = await external_photos(
            system, admin, media_root, {"a.jpg": None, "b.mp4": b"not really a video"}
        )
        await uploaded(system, user, photo(50))
        await uploaded(
            system, user, b"\x00\x00\x00\x18ftypmp42", "clip.mp4", fields={"isFavorite": "true"}
        )
        assert await stats(system, user) == {"images": 2, "videos": 2, "total": 4}
        favorites = await ok(
            await system.client.get("/api/assets/statistics?isFavorite=true", headers=user)
        )
        assert favorites == {"images": 0, "videos": 1, "total": 1}
        assert await stats(system, admin) == {"images": 0, "videos": 0, "total": 0}
