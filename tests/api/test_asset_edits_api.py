"""Favourites, archive, description, rating, the trash and Immich's server routes, by the API."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.api.server_info import as_human_readable
from shared import events as ev
from shared.metadata import AssetMetadata
from tests.api.assets import (
    asset_by_path,
    external_photos,
    leftovers,
    photo,
    stats,
    uploaded,
)
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import System


async def info(system: System, headers: dict[str, str], asset_id: str) -> dict[str, Any]:
    return await ok(await system.client.get(f"/api/assets/{asset_id}", headers=headers))  # type: ignore[no-any-return]


async def put(system: System, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    return await system.client.put(path, headers=headers, json=body)


async def search_ids(system: System, headers: dict[str, str], **filters: Any) -> set[str]:
    body = await ok(await system.client.post("/api/search/metadata", headers=headers, json=filters))
    return {a["id"] for a in body["assets"]["items"]}


async def timeline_ids(system: System, headers: dict[str, str], query: str = "") -> set[str]:
    buckets = await ok(await system.client.get(f"/api/timeline/buckets?{query}", headers=headers))
    ids: set[str] = set()
    for b in buckets:
        got = await ok(
            await system.client.get(
                f"/api/timeline/bucket?timeBucket={b['timeBucket']}&{query}", headers=headers
            )
        )
        ids.update(got["id"])
    return ids


def said(message: str | list[str]) -> str:
    """An error's message whether it comes as a string or as Immich's validation array."""
    return "; ".join(message) if isinstance(message, list) else message


async def delete(system: System, headers: dict[str, str], ids: list[str], **body: Any) -> Any:
    return await system.client.request(
        "DELETE", "/api/assets", headers=headers, json={"ids": ids, **body}
    )


class TestUpdate:
    async def test_update_sets_favourite_archive_description_and_rating(
        self, system: System
    ) -> None:
        admin = await sign_up_admin(system)
        a = await uploaded(system, admin, photo(200))
        body = await ok(
            await put(
                system,
                admin,
                f"/api/assets/{a}",
                {"isFavorite": True, "isArchived": True, "description": "Dinner", "rating": 4},
            )
        )
        assert body["isFavorite"] is True and body["isArchived"] is True
        assert body["visibility"] == "archive"
        assert body["exifInfo"]["description"] == "Dinner" and body["exifInfo"]["rating"] == 4
        again = await info(system, admin, a)
        assert again["isFavorite"] and again["exifInfo"]["description"] == "Dinner"
        # Immich's newer word for archiving, and back.
        body = await ok(await put(system, admin, f"/api/assets/{a}", {"visibility": "timeline"}))
        assert body["isArchived"] is False and body["visibility"] == "timeline"
        assert body["isFavorite"] is True  # fields not sent are unchanged

    async def test_bulk_update_changes_every_asset(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a, b = await uploaded(system, admin, photo(201)), await uploaded(system, admin, photo(202))
        r = await put(system, admin, "/api/assets", {"ids": [a, b], "isFavorite": True})
        assert r.status_code == 204, r.text
        assert await search_ids(system, admin, isFavorite=True) == {a, b}
        favorites = await ok(
            await system.client.get("/api/assets/statistics?isFavorite=true", headers=admin)
        )
        assert favorites["total"] == 2

    async def test_archived_assets_leave_the_timeline_view_but_stay_in_the_archive(
        self, system: System
    ) -> None:
        admin = await sign_up_admin(system)
        a, b = await uploaded(system, admin, photo(203)), await uploaded(system, admin, photo(204))
        await ok(await put(system, admin, "/api/assets", {"ids": [a], "isArchived": True}), 204)
        assert await timeline_ids(system, admin, "visibility=timeline") == {b}
        assert await timeline_ids(system, admin, "visibility=archive") == {a}
        assert await search_ids(system, admin, visibility="archive") == {a}
        assert await search_ids(system, admin, isArchived=False) == {b}

    async def test_bad_values_are_refused_and_nothing_changes(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a = await uploaded(system, admin, photo(205))
        cases = [
            ({"rating": 6, "isFavorite": True}, "rating must not be greater than 5"),
            ({"rating": -2}, "rating must not be less than -1"),
            ({"visibility": "locked"}, "visibility must be one of the following values"),
            ({"dateTimeOriginal": "2020-01-01T00:00:00Z"}, "dateTimeOriginal cannot be changed"),
        ]
        for body, message in cases:
            r = await put(system, admin, f"/api/assets/{a}", body)
            assert r.status_code == 400, r.text
            assert message in said(r.json()["message"])
        assert (await info(system, admin, a))["isFavorite"] is False

    async def test_someone_elses_asset_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        mine = await uploaded(system, admin, photo(206))
        for path, body in (
            (f"/api/assets/{mine}", {"isFavorite": True}),
            ("/api/assets", {"ids": [mine], "isFavorite": True}),
            ("/api/assets", {"ids": [str(uuid.uuid4())], "isFavorite": True}),
        ):
            r = await put(system, bob, path, body)
            assert r.status_code == 400
            assert r.json()["message"] == "Not found or no asset.update access"
        assert (await info(system, admin, mine))["isFavorite"] is False

    async def test_description_survives_the_file_being_read_again(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a = await uploaded(system, admin, photo(207))
        await ok(await put(system, admin, f"/api/assets/{a}", {"description": "Mine"}))
        meta = AssetMetadata(
            checksum="ab" * 20,
            file_size=10,
            file_modified_at=datetime(2024, 1, 1, tzinfo=UTC),
            description="From the file",
        )
        seq = await system.ctx.bus.publish(
            ev.MetadataExtracted(stream_id=uuid.UUID(a), metadata=meta)
        )
        await system.ctx.settle(seq)
        assert (await info(system, admin, a))["exifInfo"]["description"] == "Mine"

    async def test_external_assets_can_be_favourites(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, _, paths = await external_photos(system, admin, media_root, {"a.jpg": None})
        asset = await asset_by_path(system, user, paths["a.jpg"])
        body = await ok(await put(system, user, f"/api/assets/{asset['id']}", {"isFavorite": True}))
        assert body["isFavorite"] is True


class TestTrash:
    async def test_deleted_upload_goes_to_the_trash_and_comes_back(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a, b = await uploaded(system, admin, photo(210)), await uploaded(system, admin, photo(211))
        assert (await delete(system, admin, [a])).status_code == 204
        assert (await info(system, admin, a))["isTrashed"] is True
        assert len(leftovers(system)) == 2  # the file stays until the trash is emptied
        assert await timeline_ids(system, admin) == {b}
        assert await timeline_ids(system, admin, "isTrashed=true") == {a}
        assert await search_ids(system, admin) == {b}
        assert await search_ids(system, admin, withDeleted=True) == {a, b}
        assert (await stats(system, admin))["total"] == 1
        trashed = await ok(
            await system.client.get("/api/assets/statistics?isTrashed=true", headers=admin)
        )
        assert trashed["total"] == 1
        libraries = await ok(await system.client.get("/api/libraries", headers=admin))
        upload = next(lib for lib in libraries if lib["type"] == "UPLOAD")
        library_stats = await ok(
            await system.client.get(f"/api/libraries/{upload['id']}/statistics", headers=admin)
        )
        assert library_stats["total"] == 1 and upload["assetCount"] == 1

        restored = await ok(
            await system.client.post(
                "/api/trash/restore/assets", headers=admin, json={"ids": [a, b]}
            )
        )
        assert restored == {"count": 1}
        assert (await info(system, admin, a))["isTrashed"] is False
        assert await timeline_ids(system, admin) == {a, b}

    async def test_restore_brings_back_the_whole_trash(self, system: System) -> None:
        admin = await sign_up_admin(system)
        ids = [await uploaded(system, admin, photo(212 + i)) for i in range(3)]
        await ok(await delete(system, admin, ids[:2]), 204)
        assert await ok(await system.client.post("/api/trash/restore", headers=admin)) == {
            "count": 2
        }
        assert await search_ids(system, admin) == set(ids)

    async def test_emptying_the_trash_removes_assets_and_their_files(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        a, b = await uploaded(system, admin, photo(215)), await uploaded(system, admin, photo(216))
        theirs = await uploaded(system, bob, photo(217))
        await ok(await delete(system, admin, [a]), 204)
        await ok(await delete(system, bob, [theirs]), 204)
        assert await ok(await system.client.post("/api/trash/empty", headers=admin)) == {"count": 1}
        assert (await system.client.get(f"/api/assets/{a}", headers=admin)).status_code == 400
        left = leftovers(system)
        assert len(left) == 2 and not any(a in f for f in left)
        assert (await info(system, bob, theirs))["isTrashed"] is True  # only the caller's trash
        assert await search_ids(system, admin) == {b}

    async def test_force_removes_for_good_at_once(self, system: System) -> None:
        admin = await sign_up_admin(system)
        a = await uploaded(system, admin, photo(218))
        await ok(await delete(system, admin, [a]), 204)
        await ok(await delete(system, admin, [a], force=True), 204)  # from the trash, too
        assert leftovers(system) == []
        assert await ok(await system.client.post("/api/trash/empty", headers=admin)) == {"count": 0}

    async def test_external_assets_are_never_trashed(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, _, paths = await external_photos(system, admin, media_root, {"a.jpg": None})
        asset = await asset_by_path(system, user, paths["a.jpg"])
        for force in (False, True):
            r = await delete(system, user, [asset["id"]], force=force)
            assert r.status_code == 400
            assert "never deletes files of external libraries" in r.json()["message"]
        assert (await info(system, user, asset["id"]))["isTrashed"] is False
        assert paths["a.jpg"].exists()

    async def test_trashed_upload_is_reported_as_trashed_duplicate(self, system: System) -> None:
        admin = await sign_up_admin(system)
        data = photo(219)
        a = await uploaded(system, admin, data)
        await ok(await delete(system, admin, [a]), 204)
        checksum = base64.b64encode(hashlib.sha1(data).digest()).decode()
        body = await ok(
            await system.client.post(
                "/api/assets/bulk-upload-check",
                headers=admin,
                json={"assets": [{"id": "x", "checksum": checksum}]},
            )
        )
        assert body["results"][0]["isTrashed"] is True
        assert body["results"][0]["assetId"] == a


class TestServer:
    async def test_storage_reports_the_upload_locations_disk(self, system: System) -> None:
        admin = await sign_up_admin(system)
        await uploaded(system, admin, photo(222))  # the upload location exists from now on
        body = await ok(await system.client.get("/api/server/storage", headers=admin))
        st = os.statvfs(system.settings.upload_path)
        total = st.f_blocks * st.f_frsize
        assert body["diskSizeRaw"] == total
        assert body["diskSize"] == as_human_readable(total)
        # Other programs write to the disk meanwhile: the figures are of the same disk, close.
        slack = total // 20
        assert abs(body["diskAvailableRaw"] - st.f_bavail * st.f_frsize) < slack
        assert abs(body["diskUseRaw"] - (total - st.f_bfree * st.f_frsize)) < slack
        assert body["diskUseRaw"] + body["diskAvailableRaw"] <= total
        assert body["diskUse"] == as_human_readable(body["diskUseRaw"])
        assert body["diskAvailable"] == as_human_readable(body["diskAvailableRaw"])
        expected = round(body["diskUseRaw"] / body["diskSizeRaw"] * 100, 2)
        assert body["diskUsagePercentage"] == expected

    def test_human_readable_sizes_follow_immich(self) -> None:
        assert as_human_readable(0) == "0 B"
        assert as_human_readable(1023) == "1023 B"
        assert as_human_readable(1536) == "1.5 KiB"
        assert as_human_readable(1024**2 - 1) == "1.0 MiB"  # not 1024.0 KiB
        assert as_human_readable(10 * 1024**3) == "10.0 GiB"

    async def test_statistics_count_every_users_photos_videos_and_uploads(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        user, headers, _, _ = await external_photos(
            system, admin, media_root, {"a.jpg": None, "b.jpg": None}
        )
        a = await uploaded(system, admin, photo(220))
        trashed = await uploaded(system, admin, photo(221))
        await ok(await delete(system, admin, [trashed]), 204)
        size = (await info(system, admin, a))["exifInfo"]["fileSizeInByte"]
        body = await ok(await system.client.get("/api/server/statistics", headers=admin))
        by_user = {u["userId"]: u for u in body["usageByUser"]}
        mine = by_user[(await ok(await system.client.get("/api/users/me", headers=admin)))["id"]]
        assert mine["photos"] == 1 and mine["videos"] == 0 and mine["usage"] == size
        assert mine["usagePhotos"] == size and mine["usageVideos"] == 0
        theirs = by_user[user["id"]]
        # External photos count; their bytes are not the upload location's.
        assert theirs["photos"] == 2 and theirs["usage"] == 0
        assert theirs["userName"] == user["name"] and theirs["quotaSizeInBytes"] is None
        assert body["photos"] == 3 and body["usage"] == size
        r = await system.client.get("/api/server/statistics", headers=headers)
        assert r.status_code == 403

    async def test_version_check_and_history_report_the_running_version(
        self, system: System
    ) -> None:
        assert await ok(await system.client.get("/api/server/version-history")) == []
        admin = await sign_up_admin(system)
        version = await ok(await system.client.get("/api/server/version"))
        name = f"v{version['major']}.{version['minor']}.{version['patch']}"
        check = await ok(await system.client.get("/api/server/version-check", headers=admin))
        assert check["releaseVersion"] == name and check["checkedAt"]
        history = await ok(await system.client.get("/api/server/version-history"))
        assert [h["version"] for h in history] == [name]
        assert history[0]["createdAt"] and uuid.UUID(history[0]["id"])
