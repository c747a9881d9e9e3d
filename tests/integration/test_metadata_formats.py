"""JPEG XL and AVIF through the real metadata worker: scanned, read, rendered, stored."""

from __future__ import annotations

import io
from pathlib import Path

import pillow_jxl  # noqa: F401  (Pillow's JPEG XL encoder, to make the file)
import pyvips
from PIL import Image

from services.metadata.handlers import thumbnail_keys
from tests.helpers import assets_read, external_library, media_system, scan
from tests.system import Infra


async def test_jpeg_xl_and_avif_get_metadata_and_renditions(infra: Infra, tmp_path: Path) -> None:
    async with media_system(infra, tmp_path) as m:
        exif = Image.Exif()
        exif[0x010F] = "Shoebox"
        exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
        Image.new("RGB", (1800, 1200), (30, 160, 40)).save(
            m.root / "photo.jxl", "JXL", quality=85, exif=exif.tobytes()
        )
        avif = pyvips.Image.black(1200, 1800).new_from_image([30, 40, 160]).cast("uchar")
        (m.root / "photo.avif").write_bytes(avif.heifsave_buffer(compression="av1", Q=60))
        lib = (await external_library(m.system, m.admin, m.owner["id"], [str(m.root)]))["id"]
        await scan(m.system, m.admin, lib)
        assets = {
            Path(a["originalPath"]).name: a
            for a in await assets_read(m.system, m.admin, lib, 2, withExif=True)
        }
        store = m.system.ctx.thumbs
        assert store is not None
        for name, size in (("photo.jxl", (375, 250)), ("photo.avif", (250, 375))):
            asset = assets[name]
            assert asset["metadataStatus"] == "done", asset
            assert asset["thumbhash"]
            data = (await store.get(thumbnail_keys(asset["id"])[0])).data or b""
            with Image.open(io.BytesIO(data)) as thumbnail:
                assert (thumbnail.format, thumbnail.size) == ("JPEG", size)
        jxl = assets["photo.jxl"]
        assert jxl["originalMimeType"] == "image/jxl"
        assert jxl["exifInfo"]["make"] == "Shoebox"
        assert jxl["exifInfo"]["dateTimeOriginal"].startswith("2024-05-06T07:08:09")
        assert assets["photo.avif"]["exifInfo"]["exifImageHeight"] == 1800
