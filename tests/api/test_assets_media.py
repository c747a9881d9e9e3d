"""Media (originals, thumbnails, playback), deletion and statistics of assets, through the real
API."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from services.api.media import thumb_version
from shared import events as ev
from tests.api.assets import (
    asset_by_path,
    external_photos,
    extract,
    leftovers,
    photo,
    stats,
    uploaded,
)
from tests.fsrace import swapping
from tests.helpers import create_user, ok, scan, sign_up_admin
from tests.system import System


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
