"""Timeline buckets, map markers and albums through the real API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.api.assets import asset_by_path, external_photos, extract, photo, uploaded
from tests.helpers import create_user, ok, scan, sign_up_admin
from tests.system import System


async def buckets(system: System, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    return await ok(
        await system.client.get(
            "/api/timeline/buckets",
            headers=headers,  # type: ignore[no-any-return]
            params=query,
        )
    )


async def bucket(
    system: System, headers: dict[str, str], time_bucket: str, **query: Any
) -> dict[str, Any]:
    return await ok(
        await system.client.get(
            "/api/timeline/bucket",
            headers=headers,  # type: ignore[no-any-return]
            params={"timeBucket": time_bucket, **query},
        )
    )


async def three_months(system: System, headers: dict[str, str]) -> dict[str, str]:
    """Uploads taken in Jan 2023 (two), Mar 2023 and Dec 2024; returns name -> id."""
    taken = {
        "jan-a": "2023-01-05T10:00:00.000Z",
        "jan-b": "2023-01-31T23:59:59.000Z",
        "mar": "2023-03-01T00:00:00.000Z",
        "dec": "2024-12-24T18:00:00.000Z",
    }
    return {
        name: await uploaded(system, headers, photo(100 + i), f"{name}.jpg", created=when)
        for i, (name, when) in enumerate(taken.items())
    }


class TestTimeline:
    async def test_buckets_count_assets_per_month_newest_first(self, system: System) -> None:
        admin = await sign_up_admin(system)
        await three_months(system, admin)
        assert await buckets(system, admin) == [
            {"timeBucket": "2024-12-01", "count": 1},
            {"timeBucket": "2023-03-01", "count": 1},
            {"timeBucket": "2023-01-01", "count": 2},
        ]
        assert [b["timeBucket"] for b in await buckets(system, admin, order="asc")] == [
            "2023-01-01",
            "2023-03-01",
            "2024-12-01",
        ]

    async def test_bucket_is_columnar_and_ordered(self, system: System) -> None:
        admin = await sign_up_admin(system)
        ids = await three_months(system, admin)
        body = await bucket(system, admin, "2023-01-01")
        assert body["id"] == [ids["jan-b"], ids["jan-a"]]
        columns = (
            "ownerId",
            "ratio",
            "isFavorite",
            "isTrashed",
            "isImage",
            "visibility",
            "thumbhash",
            "fileCreatedAt",
            "createdAt",
            "localOffsetHours",
            "duration",
            "projectionType",
            "livePhotoVideoId",
            "city",
            "country",
            "isOffline",
        )
        for column in columns:
            assert len(body[column]) == 2, column
        assert body["fileCreatedAt"] == ["2023-01-31T23:59:59.000Z", "2023-01-05T10:00:00.000Z"]
        assert body["isImage"] == [True, True] and body["visibility"] == ["timeline"] * 2
        assert body["isTrashed"] == [False, False] and body["isOffline"] == [False, False]
        assert body["localOffsetHours"] == [0, 0] and body["duration"] == [None, None]
        assert "latitude" not in body
        asc = await bucket(system, admin, "2023-01-01", order="asc")
        assert asc["id"] == [ids["jan-a"], ids["jan-b"]]
        assert (await bucket(system, admin, "2022-01-01"))["id"] == []

    async def test_bucket_uses_metadata_dates_ratio_and_coordinates(self, system: System) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(system, admin, photo(120), created="2020-01-01T00:00:00.000Z")
        taken = datetime(2021, 6, 15, 12, 0, tzinfo=UTC)
        await extract(
            system,
            asset_id,
            width=4000,
            height=3000,
            orientation=6,
            date_time_original=datetime(2021, 6, 15, 10, 0, tzinfo=UTC),
            local_date_time=taken,
            latitude=48.85,
            longitude=2.35,
        )
        assert await buckets(system, admin) == [{"timeBucket": "2021-06-01", "count": 1}]
        body = await bucket(system, admin, "2021-06-01", withCoordinates="true")
        assert body["id"] == [asset_id]
        assert body["ratio"] == [0.75]  # rotated by 90 degrees: 3000 x 4000
        assert body["localOffsetHours"] == [2]
        assert body["latitude"] == [48.85] and body["longitude"] == [2.35]

    async def test_timeline_includes_external_and_offline_assets(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, lib, paths = await external_photos(
            system, admin, media_root, {"a.jpg": photo(121), "b.jpg": photo(122)}
        )
        await uploaded(system, user, photo(123))
        paths["b.jpg"].unlink()
        await scan(system, admin, lib)
        total = sum(b["count"] for b in await buckets(system, user))
        assert total == 3
        offline = await asset_by_path(system, user, paths["b.jpg"])
        month = offline["localDateTime"][:7] + "-01"
        body = await bucket(system, user, month)
        assert body["isOffline"][body["id"].index(offline["id"])] is True

    async def test_filters_favorites_and_albums(self, system: System) -> None:
        admin = await sign_up_admin(system)
        ids = await three_months(system, admin)
        fav = await uploaded(
            system,
            admin,
            photo(130),
            "fav.jpg",
            created="2023-01-10T00:00:00.000Z",
            fields={"isFavorite": "true"},
        )
        assert await buckets(system, admin, isFavorite="true") == [
            {"timeBucket": "2023-01-01", "count": 1}
        ]
        assert (await bucket(system, admin, "2023-01-01", isFavorite="true"))["id"] == [fav]
        album = await ok(
            await system.client.post(
                "/api/albums",
                headers=admin,
                json={"albumName": "Winter", "assetIds": [ids["dec"], ids["jan-a"]]},
            ),
            201,
        )
        assert await buckets(system, admin, albumId=album["id"]) == [
            {"timeBucket": "2024-12-01", "count": 1},
            {"timeBucket": "2023-01-01", "count": 1},
        ]
        body = await bucket(system, admin, "2023-01-01", albumId=album["id"])
        assert body["id"] == [ids["jan-a"]]
        assert await buckets(system, admin, isTrashed="true") == []

    async def test_timeline_is_per_user(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        await three_months(system, admin)
        assert await buckets(system, bob) == []
        album = await ok(
            await system.client.post("/api/albums", headers=admin, json={"albumName": "mine"}), 201
        )
        r = await system.client.get(
            "/api/timeline/buckets", headers=bob, params={"albumId": album["id"]}
        )
        assert r.status_code == 400

    async def test_bad_time_bucket_is_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        for value in ("last-month", "2023-13-01"):
            r = await system.client.get(
                "/api/timeline/bucket", headers=admin, params={"timeBucket": value}
            )
            assert r.status_code == 400, value
        r = await system.client.get("/api/timeline/bucket", headers=admin)
        assert r.status_code == 400


class TestMap:
    async def test_markers_are_the_callers_assets_with_gps(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        here = await uploaded(system, admin, photo(140))
        await uploaded(system, admin, photo(141))  # no GPS
        theirs = await uploaded(system, bob, photo(142))
        await extract(system, here, latitude=52.52, longitude=13.405)
        await extract(system, theirs, latitude=1.0, longitude=2.0)
        markers = await ok(await system.client.get("/api/map/markers", headers=admin))
        assert markers == [
            {"id": here, "lat": 52.52, "lon": 13.405, "city": None, "state": None, "country": None}
        ]
        assert (
            await ok(await system.client.get("/api/map/markers?isFavorite=true", headers=admin))
            == []
        )


class TestAlbums:
    async def test_create_list_get_update_delete(self, system: System) -> None:
        admin = await sign_up_admin(system)
        ids = await three_months(system, admin)
        created = await ok(
            await system.client.post(
                "/api/albums",
                headers=admin,
                json={
                    "albumName": "Trip",
                    "description": "d",
                    "assetIds": [ids["mar"], ids["jan-a"]],
                },
            ),
            201,
        )
        assert created["albumName"] == "Trip" and created["description"] == "d"
        assert created["assetCount"] == 2
        assert {a["id"] for a in created["assets"]} == {ids["mar"], ids["jan-a"]}
        assert created["albumThumbnailAssetId"] == ids["mar"]  # the newest asset
        assert created["startDate"] == "2023-01-05T10:00:00.000Z"
        assert created["endDate"] == "2023-03-01T00:00:00.000Z"
        assert created["albumUsers"][0]["role"] == "owner" and created["shared"] is False
        album_id = created["id"]

        listed = await ok(await system.client.get("/api/albums", headers=admin))
        assert [(a["id"], a["assetCount"], a["assets"]) for a in listed] == [(album_id, 2, [])]
        by_asset = await ok(
            await system.client.get(f"/api/albums?assetId={ids['dec']}", headers=admin)
        )
        assert by_asset == []
        slim = await ok(
            await system.client.get(f"/api/albums/{album_id}?withoutAssets=true", headers=admin)
        )
        assert slim["assets"] == [] and slim["assetCount"] == 2

        updated = await ok(
            await system.client.patch(
                f"/api/albums/{album_id}",
                headers=admin,
                json={
                    "albumName": "Trip 2023",
                    "description": "",
                    "albumThumbnailAssetId": ids["jan-a"],
                },
            )
        )
        assert updated["albumName"] == "Trip 2023" and updated["description"] == ""
        assert updated["albumThumbnailAssetId"] == ids["jan-a"]
        r = await system.client.patch(
            f"/api/albums/{album_id}", headers=admin, json={"albumThumbnailAssetId": ids["dec"]}
        )
        assert r.status_code == 400

        r = await system.client.delete(f"/api/albums/{album_id}", headers=admin)
        assert r.status_code == 204
        for method, path, body in (
            ("GET", "", None),
            ("DELETE", "", None),
            ("PATCH", "", {"albumName": "x"}),
            ("PUT", "/assets", {"ids": [ids["dec"]]}),
        ):
            r = await system.client.request(
                method, f"/api/albums/{album_id}{path}", headers=admin, json=body
            )
            assert r.status_code == 400, (method, path)
            assert r.json()["message"].startswith("Not found or no album")
        assert await ok(await system.client.get("/api/albums", headers=admin)) == []
        # The assets themselves stay.
        assert (await ok(await system.client.get("/api/assets/statistics", headers=admin)))[
            "total"
        ] == 4

    async def test_add_and_remove_answer_per_id(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        ids = await three_months(system, admin)
        foreign = await uploaded(system, bob, photo(150))
        album = await ok(
            await system.client.post(
                "/api/albums",
                headers=admin,
                json={"albumName": "A", "assetIds": [ids["jan-a"], foreign]},
            ),
            201,
        )
        assert album["assetCount"] == 1  # bob's asset was left out
        unknown = str(uuid.uuid4())
        added = await ok(
            await system.client.put(
                f"/api/albums/{album['id']}/assets",
                headers=admin,
                json={"ids": [ids["jan-a"], ids["mar"], foreign, unknown, ids["mar"]]},
            )
        )
        assert added == [
            {"id": ids["jan-a"], "success": False, "error": "duplicate"},
            {"id": ids["mar"], "success": True},
            {"id": foreign, "success": False, "error": "no_permission"},
            {"id": unknown, "success": False, "error": "no_permission"},
            {"id": ids["mar"], "success": False, "error": "duplicate"},
        ]
        removed = await ok(
            await system.client.request(
                "DELETE",
                f"/api/albums/{album['id']}/assets",
                headers=admin,
                json={"ids": [ids["jan-a"], ids["dec"]]},
            )
        )
        assert removed == [
            {"id": ids["jan-a"], "success": True},
            {"id": ids["dec"], "success": False, "error": "not_found"},
        ]
        got = await ok(await system.client.get(f"/api/albums/{album['id']}", headers=admin))
        assert [a["id"] for a in got["assets"]] == [ids["mar"]]

    async def test_another_users_album_is_not_found_or_no_access(self, system: System) -> None:
        admin = await sign_up_admin(system)
        _, bob = await create_user(system, admin, "bob@example.com")
        album = await ok(
            await system.client.post("/api/albums", headers=admin, json={"albumName": "private"}),
            201,
        )
        r = await system.client.get(f"/api/albums/{album['id']}", headers=bob)
        assert r.status_code == 400
        assert r.json()["message"] == "Not found or no album.read access"
        assert await ok(await system.client.get("/api/albums", headers=bob)) == []
        r = await system.client.get(f"/api/albums/{uuid.uuid4()}", headers=admin)
        assert r.status_code == 400

    async def test_bad_album_requests_are_refused(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post("/api/albums", headers=admin, json={"description": "x"})
        assert r.status_code == 400
        r = await system.client.post(
            "/api/albums", headers=admin, json={"albumName": "x", "assetIds": ["nope"]}
        )
        assert r.status_code == 400
        r = await system.client.post(
            "/api/albums",
            headers=admin,
            json={
                "albumName": "x",
                "albumUsers": [{"userId": str(uuid.uuid4()), "role": "editor"}],
            },
        )
        assert r.status_code == 400

    async def test_external_assets_can_be_added_and_leave_when_removed(
        self, system: System, media_root: Path
    ) -> None:
        admin = await sign_up_admin(system)
        _, user, lib, paths = await external_photos(
            system, admin, media_root, {"a.jpg": photo(160), "b.jpg": photo(161)}
        )
        a = await asset_by_path(system, user, paths["a.jpg"])
        b = await asset_by_path(system, user, paths["b.jpg"])
        album = await ok(
            await system.client.post(
                "/api/albums",
                headers=user,
                json={"albumName": "External", "assetIds": [a["id"], b["id"]]},
            ),
            201,
        )
        assert album["assetCount"] == 2
        paths["b.jpg"].unlink()
        await scan(system, admin, lib)
        removed = await ok(
            await system.client.post(f"/api/libraries/{lib}/removeOffline", headers=admin)
        )
        assert removed == {"removed": 1, "kept": 0, "keptReasons": {}}
        got = await ok(await system.client.get(f"/api/albums/{album['id']}", headers=user))
        assert [x["id"] for x in got["assets"]] == [a["id"]] and got["assetCount"] == 1

    async def test_deleted_upload_leaves_its_albums(self, system: System) -> None:
        admin = await sign_up_admin(system)
        asset_id = await uploaded(system, admin, photo(170))
        album = await ok(
            await system.client.post(
                "/api/albums", headers=admin, json={"albumName": "x", "assetIds": [asset_id]}
            ),
            201,
        )
        await ok(
            await system.client.request(
                "DELETE", "/api/assets", headers=admin, json={"ids": [asset_id]}
            ),
            204,
        )
        got = await ok(await system.client.get(f"/api/albums/{album['id']}", headers=admin))
        assert got["assetCount"] == 0 and got["albumThumbnailAssetId"] is None

    async def test_album_statistics(self, system: System) -> None:
        admin = await sign_up_admin(system)
        await ok(
            await system.client.post("/api/albums", headers=admin, json={"albumName": "x"}), 201
        )
        assert await ok(await system.client.get("/api/albums/statistics", headers=admin)) == {
            "owned": 1,
            "shared": 0,
            "notShared": 1,
        }
