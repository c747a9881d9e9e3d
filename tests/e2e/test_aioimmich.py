"""Home Assistant's Immich client (`aioimmich` from PyPI) against Shoebox, over real HTTP.

Home Assistant's integration calls the server routes at setup (version, about, storage,
statistics, version check), then lists albums and their assets, fetches thumbnails and uploads
files. Every call of the package that needs neither face recognition nor smart search (people,
`search/person`, `search/smart`) or tags runs here, against the API served on a TCP port with the
projector and scanner beside it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aioimmich import Immich
from aioimmich.assets.models import UploadStatus
from aioimmich.exceptions import ImmichError

from tests.e2e.test_immich_clients import running
from tests.factories import jpeg_bytes
from tests.helpers import ok
from tests.system import Infra, eventually, run_metadata

pytestmark = pytest.mark.e2e


async def test_aioimmich_runs_its_calls_against_shoebox(infra: Infra, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"IMG_{i}.jpg"
        path.write_bytes(jpeg_bytes((24 + i, 18), (i * 60, 90, 30)))
        files.append(path)
    async with (
        running(infra, tmp_path) as (system, url, secret, key),
        aiohttp.ClientSession() as session,
    ):
        where = urlsplit(url)
        assert where.hostname is not None and where.port is not None
        await system.start("metadata", run_metadata)
        immich = Immich(session, secret, where.hostname, where.port, use_ssl=False)
        await immich.async_setup()  # GET /server/version

        # What Home Assistant's config flow and coordinator ask first.
        about = await immich.server.async_get_about_info()
        assert about.version.startswith("v")
        storage = await immich.server.async_get_storage_info()
        assert storage.disk_size_raw > 0 and 0 <= storage.disk_usage_percentage <= 100
        assert storage.disk_use_raw + storage.disk_available_raw <= storage.disk_size_raw
        version = await immich.server.async_get_version()
        check = await immich.server.async_get_version_check()
        assert check.release_version == f"v{version.major}.{version.minor}.{version.patch}"
        me = await immich.users.async_get_my_user()
        assert me.email == "admin@example.com" and me.is_admin

        # Uploads (Home Assistant's media source sends files this way); the same file twice
        # is a duplicate.
        uploaded = [await immich.assets.async_upload_asset(str(p)) for p in files]
        assert [u.status for u in uploaded] == [UploadStatus.CREATED] * 3
        again = await immich.assets.async_upload_asset(str(files[0]))
        assert again.status == UploadStatus.DUPLICATED
        assert again.asset_id == uploaded[0].asset_id
        ids = [u.asset_id for u in uploaded]

        stats = await immich.server.async_get_server_statistics()
        assert stats.photos == 3 and stats.videos == 0
        assert [u.user_id for u in stats.usage_by_user] == [me.user_id]
        assert stats.usage == sum(p.stat().st_size for p in files)

        # Search: everything, then favourites (set through Immich's PUT /assets).
        everything = await immich.search.async_get_all()
        assert sorted(a.asset_id for a in everything) == sorted(ids)
        assert await immich.search.async_get_all_favorites() == []
        await ok(
            await system.client.put(
                "/api/assets", headers=key, json={"ids": ids[:2], "isFavorite": True}
            ),
            204,
        )
        favorites = await immich.search.async_get_all_favorites()
        assert sorted(a.asset_id for a in favorites) == sorted(ids[:2])
        assert all(a.is_favorite for a in favorites)

        # Albums: created by Immich's API, filled and read by aioimmich.
        album = await ok(
            await system.client.post("/api/albums", headers=key, json={"albumName": "Garden"}),
            201,
        )
        added = await immich.albums.async_add_assets_to_album(album["id"], ids[1:])
        assert [(a.asset_id, a.success) for a in added] == [(i, True) for i in ids[1:]]
        albums = await immich.albums.async_get_all_albums()
        assert [(a.album_name, a.asset_count) for a in albums] == [("Garden", 2)]
        info = await immich.albums.async_get_album_info(album["id"])
        assert info.album_id == album["id"] and info.asset_count == 2
        assert [a.album_id for a in await immich.albums.async_filter_albums_by_name("gar")] == [
            album["id"]
        ]
        in_album = await immich.search.async_get_all_by_album_ids([album["id"]])
        assert sorted(a.asset_id for a in in_album) == sorted(ids[1:])

        # Thumbnails, made by the metadata service.
        async def thumbnails_made() -> bool:
            found = await immich.search.async_get_all()
            return len(found) == 3 and all(a.resized for a in found)

        await eventually(thumbnails_made, 60, "thumbnails of the uploads")
        thumbnail = await immich.assets.async_view_asset(ids[0])
        assert thumbnail[:3] == b"\xff\xd8\xff"  # a JPEG
        preview = await immich.assets.async_view_asset(ids[0], size="preview")
        assert preview[:3] == b"\xff\xd8\xff"
        with pytest.raises(ImmichError):  # someone else's, or nobody's: Immich's 400
            await immich.assets.async_view_asset(str(uuid.uuid4()))

        # Videos play from the original (Shoebox transcodes nothing).
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
        video = await immich.assets.async_upload_asset(str(clip))
        assert video.status == UploadStatus.CREATED
        stream = await immich.assets.async_play_video_stream(video.asset_id)
        assert await stream.read() == clip.read_bytes()
        with pytest.raises(ImmichError):  # not a video
            await immich.assets.async_play_video_stream(ids[0])
