"""Which renderer takes which file, JPEG XL and AVIF, and every format of the shared corpus."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import pyvips
from PIL import Image

from services.metadata.exif import UnreadableFile, read_metadata
from services.metadata.renditions import vips
from services.metadata.thumbs import PREVIEW_SIZE, THUMBNAIL_SIZE, make_thumbnails
from shared import media

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
GROUND_TRUTH = CORPUS / "exif-samples.exiftool.json"
RED = (200, 30, 30)


def _near(data: bytes, colour: tuple[int, int, int], tolerance: int = 30) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        pixel = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def _jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


def test_libvips_runs_one_thread_and_keeps_no_cache() -> None:
    """One thread per worker process, like sharp.concurrency(1); no operation cache, since a
    worker reads each file once by a /proc/self/fd name that the next file reuses."""
    assert vips.pyvips.concurrency_get() == 1
    assert pyvips.cache_get_max() == 0


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe1", "jpeg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a", "gif"),
        (b"\x00\x00\x00\x1cftypavif", "avif"),
        (b"\x00\x00\x00\x18ftypheic", None),  # HEVC: libvips here cannot decode it, Pillow can
        (b"\xff\x0a", None),  # JPEG XL: not in this libvips
        (b"<svg xmlns=", None),  # never rendered
        (b"BM6\x00", None),  # BMP: Pillow
    ],
)
def test_format_sniffed_from_first_bytes(head: bytes, expected: str | None) -> None:
    assert vips.vips_format(head + bytes(32)) == expected


def test_avif_rendered_by_libvips(tmp_path: Path) -> None:
    image = (pyvips.Image.black(3000, 2000, bands=3) + list(RED)).cast("uchar")
    path = tmp_path / "photo.avif"
    path.write_bytes(image.heifsave_buffer(compression="av1", Q=70))

    thumbs = make_thumbnails(str(path))

    assert (thumbs.width, thumbs.height) == (3000, 2000)
    assert _jpeg_size(thumbs.preview) == (2160, PREVIEW_SIZE)
    assert _jpeg_size(thumbs.thumbnail) == (375, THUMBNAIL_SIZE)
    assert _near(thumbs.thumbnail, RED) and _near(thumbs.preview, RED)
    assert read_metadata(str(path)).mime_type == "image/avif"


def _jxl(path: Path, size: tuple[int, int], orientation: int = 1) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Shoebox"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    Image.new("RGB", size, RED).save(path, "JXL", quality=90, exif=exif.tobytes())


def test_jpeg_xl_read_and_rendered_when_exif_rotates_it(tmp_path: Path) -> None:
    path = tmp_path / "photo.jxl"
    _jxl(path, (2000, 1600), orientation=6)

    meta = read_metadata(str(path))
    thumbs = make_thumbnails(str(path))

    assert media.asset_type(str(path)) == "IMAGE" and meta.mime_type == "image/jxl"
    assert (meta.width, meta.height, meta.make, meta.orientation) == (2000, 1600, "Shoebox", 6)
    assert meta.date_time_original is not None and meta.date_time_original.year == 2024
    assert (thumbs.width, thumbs.height) == meta.display_size() == (1600, 2000)
    assert _jpeg_size(thumbs.preview) == (PREVIEW_SIZE, 1800)
    assert _jpeg_size(thumbs.thumbnail) == (THUMBNAIL_SIZE, 312)
    assert _near(thumbs.thumbnail, RED)


def test_unreadable_when_jpeg_xl_is_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "cut.jxl"
    _jxl(path, (800, 600))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UnreadableFile):
        make_thumbnails(str(path))


def test_unreadable_when_jpeg_is_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    noise = pyvips.Image.gaussnoise(2000, 1500, mean=128, sigma=60).cast("uchar")
    data = noise.bandjoin([noise, noise]).jpegsave_buffer(Q=90)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFile, match=r"truncated|Premature end"):
        make_thumbnails(str(path))


def test_unreadable_when_tiff_header_claims_a_decompression_bomb(tmp_path: Path) -> None:
    """libvips has no Pillow MAX_IMAGE_PIXELS: the header's size is checked before decoding."""
    path = tmp_path / "bomb.tif"
    pyvips.Image.black(16_000, 14_000).cast("uchar").tiffsave(str(path), compression="deflate")
    with pytest.raises(UnreadableFile, match="decompression bomb"):
        vips.render_file(str(path))
    with pytest.raises(UnreadableFile, match="decompression bomb"):
        make_thumbnails(str(path))


def _corpus_files() -> list[str]:
    root = CORPUS / "exif-samples"
    if not root.is_dir():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and media.asset_type(p.name) is not None
    )


def _broken() -> set[str]:
    """Corpus files exiftool itself reports as damaged."""
    if not GROUND_TRUTH.is_file():
        return set()
    return {
        e["SourceFile"].removeprefix("./")
        for e in json.loads(GROUND_TRUTH.read_text(encoding="utf-8"))
        if "Error" in e
    }


@pytest.mark.skipif(not _corpus_files(), reason=f"shared corpus not found at {CORPUS}")
def test_every_corpus_file_a_library_imports_renders() -> None:
    """Every file of ../shared/corpus that a scan would import, in every format there, gets
    both renditions (exiftool's damaged files may fail, but only as UnreadableFile)."""
    root = CORPUS / "exif-samples"
    broken = _broken()
    failed = []
    formats = set()
    for rel in _corpus_files():
        try:
            thumbs = make_thumbnails(str(root / rel))
        except UnreadableFile as e:
            if rel not in broken:
                failed.append(f"{rel}: {e}")
            continue
        formats.add(media.extension(rel))
        assert min(_jpeg_size(thumbs.thumbnail)) == min(THUMBNAIL_SIZE, thumbs.width, thumbs.height)
    assert failed == []
    assert {".jpg", ".jpeg", ".tiff", ".heic", ".heif"} <= formats
