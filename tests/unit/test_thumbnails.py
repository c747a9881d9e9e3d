"""make_thumbnails on the corpus and on generated images and videos: format, size, upright."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from services.metadata.exif import UnreadableFile, read_metadata
from services.metadata.renditions import vips
from services.metadata.thumbs import PREVIEW_SIZE, THUMBNAIL_SIZE, Thumbnails, make_thumbnails
from services.metadata.values import EXIF_TRANSPOSE

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
SAMPLES = CORPUS / "exif-samples"
GROUND_TRUTH = CORPUS / "exif-samples.exiftool.json"

needs_corpus = pytest.mark.skipif(
    not (SAMPLES.is_dir() and GROUND_TRUTH.is_file()),
    reason=f"shared corpus not found at {CORPUS}",
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
# Orientation n is displayed by applying EXIF_TRANSPOSE[n]; the inverse makes the stored pixels.
INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def _corpus_images() -> list[str]:
    if not GROUND_TRUTH.is_file():
        return []
    entries = json.loads(GROUND_TRUTH.read_text(encoding="utf-8"))
    return sorted(
        e["SourceFile"].removeprefix("./")
        for e in entries
        if e.get("FileType") in ("JPEG", "TIFF", "HEIC") and (SAMPLES / e["SourceFile"]).is_file()
    )


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _near(pixel: object, colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def _check_sizes(thumbs: Thumbnails) -> tuple[Image.Image, Image.Image]:
    """JPEG thumbnail and preview, short sides within Immich's limits, never enlarged, with
    the aspect ratio of the upright original."""
    thumbnail, preview = _open(thumbs.thumbnail), _open(thumbs.preview)
    assert thumbnail.format == "JPEG"
    assert preview.format == "JPEG"
    assert thumbnail.mode == "RGB" and preview.mode == "RGB"
    short = min(thumbs.width, thumbs.height)
    assert min(thumbnail.size) == min(short, THUMBNAIL_SIZE)
    assert min(preview.size) == min(short, PREVIEW_SIZE)
    for image in (thumbnail, preview):
        assert image.width <= thumbs.width and image.height <= thumbs.height
        expected = thumbs.width / thumbs.height
        # rounding one side to whole pixels moves the ratio by at most ~1 px / short side
        assert math.isclose(image.width / image.height, expected, rel_tol=1.5 / min(image.size))
    return thumbnail, preview


# ---------------------------------------------------------------------------------- corpus


@needs_corpus
class TestCorpusThumbnails:
    @pytest.mark.parametrize("rel", _corpus_images())
    def test_renditions_fit_and_match_metadata_when_image_decodes(self, rel: str) -> None:
        path = str(SAMPLES / rel)
        thumbs = make_thumbnails(path)
        _check_sizes(thumbs)
        # The same upright size from both functions: HEIF is never rotated twice, JPEG once.
        assert read_metadata(path).display_size() == (thumbs.width, thumbs.height)

    @pytest.mark.parametrize("shape", ["landscape", "portrait"])
    @pytest.mark.parametrize("orientation", range(2, 9))
    def test_thumbnail_matches_unrotated_sample_when_exif_orientation_set(
        self, shape: str, orientation: int
    ) -> None:
        reference = _open(
            make_thumbnails(str(SAMPLES / f"jpg/orientation/{shape}_1.jpg")).thumbnail
        )
        rotated = _open(
            make_thumbnails(str(SAMPLES / f"jpg/orientation/{shape}_{orientation}.jpg")).thumbnail
        )
        assert rotated.size == reference.size
        # Each sample is its own JPEG (with its number drawn in), so upright copies still differ
        # by rms ~11-15; any mirror or rotation error costs > 55 on these photos.
        rms = max(ImageStat.Stat(ImageChops.difference(rotated, reference)).rms)
        mirrored = rotated.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mirrored_rms = max(ImageStat.Stat(ImageChops.difference(mirrored, reference)).rms)
        assert rms < 25, f"{shape}_{orientation} differs from {shape}_1 by rms {rms:.1f}"
        assert mirrored_rms > 2 * rms

    @pytest.mark.parametrize(
        ("rel", "profile"),
        [
            ("heic/mobile/iphone_13_pro_max.HEIC", "Display P3"),  # wide gamut: carried over
            ("jpg/orientation/landscape_3.jpg", "Generic RGB Profile"),
            ("jpg/Canon_40D.jpg", None),  # sRGB: what untagged pixels mean anyway
        ],
    )
    def test_renditions_carry_the_profile_when_original_is_not_srgb(
        self, rel: str, profile: str | None
    ) -> None:
        thumbs = make_thumbnails(str(SAMPLES / rel))
        for data in (thumbs.thumbnail, thumbs.preview):
            icc = _open(data).info.get("icc_profile")
            if profile is None:
                assert icc is None
            else:
                assert isinstance(icc, bytes)
                parsed = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                assert ImageCms.getProfileDescription(parsed).strip() == profile

    @pytest.mark.parametrize(
        ("rel", "stored"),
        [
            ("heic/mobile/iphone_13_pro_max.HEIC", (4032, 3024)),
            ("heic/mobile/HMD_Nokia_8.3_5G.heif", (4608, 3456)),
        ],
    )
    def test_heic_comes_out_portrait_once_when_container_rotates(
        self, rel: str, stored: tuple[int, int]
    ) -> None:
        """Both files store landscape pixels with irot (90° CW); pillow-heif applies it, so any
        second rotation (EXIF 6 in the iPhone file) would make them landscape again."""
        meta = read_metadata(str(SAMPLES / rel))
        thumbs = make_thumbnails(str(SAMPLES / rel))
        assert (meta.width, meta.height) == stored
        assert (thumbs.width, thumbs.height) == (stored[1], stored[0])
        thumbnail, preview = _check_sizes(thumbs)
        assert thumbnail.height > thumbnail.width and preview.height > preview.width

    def test_landscape_heic_stays_landscape_when_not_rotated(self) -> None:
        thumbs = make_thumbnails(str(SAMPLES / "heic/mobile/HMD_Nokia_8.3_5G_hdr.heif"))
        thumbnail, _ = _check_sizes(thumbs)
        assert (thumbs.width, thumbs.height) == (4608, 3456)
        assert thumbnail.size == (333, 250)


# ------------------------------------------------------------------------------ orientation


def _marked(size: tuple[int, int]) -> Image.Image:
    """Displayed image: blue, with a red square in the top-left corner."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 5, size[1] // 5))
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_marker_ends_top_left_when_jpeg_has_exif_orientation(
    tmp_path: Path, orientation: int
) -> None:
    displayed = _marked((1600, 800))
    method = EXIF_TRANSPOSE.get(INVERSE[orientation])
    stored = displayed.transpose(method) if method is not None else displayed
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, "JPEG", quality=95, exif=exif)

    thumbs = make_thumbnails(str(path))

    # libvips itself made them: no orientation sends a JPEG to Pillow instead (a rotation in
    # libvips' sequential pipeline did, for 5-8).
    assert vips.render_file(str(path)) == thumbs
    assert (thumbs.width, thumbs.height) == (1600, 800)
    thumbnail, preview = _check_sizes(thumbs)
    assert thumbnail.size == (500, 250) and preview.size == (1600, 800)
    for image in (thumbnail, preview):
        w, h = image.size
        assert _near(image.getpixel((w // 20, h // 20)), RED)
        for corner in ((w - 1 - w // 20, h // 20), (w // 20, h - 1 - h // 20)):
            assert _near(image.getpixel(corner), BLUE)
    assert read_metadata(str(path)).display_size() == (1600, 800)


# ------------------------------------------------------------------------------------ modes


@pytest.mark.parametrize(
    ("mode", "fmt", "expected"),
    [
        ("P", "PNG", RED),
        ("P+tRNS", "PNG", RED),
        ("LA", "PNG", (128, 128, 128)),
        ("RGBA", "PNG", RED),
        ("RGBA", "WEBP", RED),
        ("CMYK", "JPEG", RED),
        ("CMYK", "TIFF", RED),
        ("I;16", "PNG", (128, 128, 128)),
        ("I", "TIFF", (128, 128, 128)),
        ("F", "TIFF", (128, 128, 128)),
        ("1", "PNG", WHITE),
        ("L", "JPEG", (128, 128, 128)),
        ("YCbCr", "JPEG", RED),
    ],
)
def test_rgb_renditions_when_source_mode_is_not_rgb(
    tmp_path: Path, mode: str, fmt: str, expected: tuple[int, int, int]
) -> None:
    source = Image.new("RGB", (300, 200), RED)
    if mode in ("LA", "I;16", "I", "F", "L"):
        grey = Image.new("L", (300, 200), 128)
        source = {
            "LA": grey.convert("LA"),
            "I;16": Image.new("I;16", (300, 200), 128 * 256),
            "I": Image.new("I", (300, 200), 128 * 256),
            "F": Image.new("F", (300, 200), 128 / 255),
            "L": grey,
        }[mode]
    elif mode == "1":
        source = Image.new("1", (300, 200), 1)
    elif mode == "P":
        source = source.convert("P")
    elif mode == "P+tRNS":
        source = Image.new("P", (300, 200), 1)
        source.putpalette([0, 0, 0, 255, 0, 0])
        source.info["transparency"] = 0
    else:
        source = source.convert(mode)
    path = tmp_path / f"sample.{fmt.lower()}"
    source.save(path, fmt)

    thumbs = make_thumbnails(str(path))

    thumbnail, preview = _check_sizes(thumbs)
    assert (thumbs.width, thumbs.height) == (300, 200)
    assert _near(thumbnail.getpixel((150, 100)), expected, tolerance=40)
    assert _near(preview.getpixel((150, 100)), expected, tolerance=40)


def test_transparent_pixels_become_white_when_image_has_alpha(tmp_path: Path) -> None:
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 200, 300))
    path = tmp_path / "alpha.png"
    image.save(path)
    thumbnail, _ = _check_sizes(make_thumbnails(str(path)))
    assert _near(thumbnail.getpixel((30, 125)), RED)
    assert _near(thumbnail.getpixel((300, 125)), WHITE)


def test_first_frame_used_when_gif_is_animated(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (320, 240), c) for c in (GREEN, BLUE, RED)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    thumbnail, preview = _check_sizes(make_thumbnails(str(path)))
    assert _near(thumbnail.getpixel((160, 120)), GREEN)
    assert _near(preview.getpixel((160, 120)), GREEN)


def test_first_frame_used_when_webp_is_animated(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (320, 240), c) for c in (BLUE, RED)]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    thumbnail, _ = _check_sizes(make_thumbnails(str(path)))
    assert _near(thumbnail.getpixel((160, 120)), BLUE)


def test_large_panorama_keeps_short_side_when_resized(tmp_path: Path) -> None:
    path = tmp_path / "pano.jpg"
    Image.new("RGB", (8000, 1000), BLUE).save(path, quality=70)
    thumbnail, preview = _check_sizes(make_thumbnails(str(path)))
    assert thumbnail.size == (2000, 250)
    assert preview.size == (8000, 1000)


def test_jpeg_over_the_bomb_limit_renders_at_reduced_scale(tmp_path: Path) -> None:
    """A 182 MP stitched panorama: over Pillow's limit as a whole, a 1/4-scale decode for the
    preview is not."""
    path = tmp_path / "stitched.jpg"
    side = 13_500
    assert side * side > 2 * (Image.MAX_IMAGE_PIXELS or 0)
    Image.new("L", (side, side), 128).save(path, quality=50)
    thumbs = make_thumbnails(str(path))
    assert (thumbs.width, thumbs.height) == (side, side)
    thumbnail, preview = _check_sizes(thumbs)
    assert thumbnail.size == (250, 250) and preview.size == (1440, 1440)
    assert read_metadata(str(path)).display_size() == (side, side)  # headers only, no decode


def test_unreadable_when_png_is_a_decompression_bomb(tmp_path: Path) -> None:
    """Formats that cannot decode at a reduced scale keep Pillow's protection."""
    path = tmp_path / "bomb.png"
    Image.new("1", (15_000, 15_000)).save(path)  # a few kB on disk, 225 MP decoded
    with pytest.raises(UnreadableFile, match="decompression bomb"):
        make_thumbnails(str(path))


# ---------------------------------------------------------------------------------- failures


def test_unreadable_when_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(UnreadableFile):
        make_thumbnails(str(path))


def test_file_not_found_propagates_when_file_vanished(tmp_path: Path) -> None:
    for name in ("gone.jpg", "gone.mov", "gone.dng"):
        with pytest.raises(FileNotFoundError):
            make_thumbnails(str(tmp_path / name))


def test_unreadable_when_video_is_garbage(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xde\xad" * 2000)
    with pytest.raises(UnreadableFile):
        make_thumbnails(str(path))
    with pytest.raises(UnreadableFile):
        read_metadata(str(path))


# ------------------------------------------------------------------------------------ videos


@cache
def _codec() -> str:
    return next(c for c in ("libx264", "h264", "mpeg4") if c in av.codecs_available)


def _write_video(
    path: Path, *, rotation: int = 0, seconds: float = 2.0, faststart: bool = False
) -> Path:
    """320x240 at 25 fps: red for the first 0.6 s, then blue; a green square at stored top-left.
    faststart puts the MP4 index (moov) before the frames, as phones and streaming tools do."""
    fps = 25
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        container.metadata["creation_time"] = "2021-04-11T15:47:53.000000Z"
        stream = container.add_stream(_codec(), rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(int(seconds * fps)):
            image = Image.new("RGB", (320, 240), RED if index < 0.6 * fps else BLUE)
            image.paste(GREEN, (0, 0, 64, 48))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture(scope="module")
def portrait_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Phones record landscape sensor frames and a display matrix rotating them 90° clockwise.
    return _write_video(tmp_path_factory.mktemp("video") / "portrait.mov", rotation=-90)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_only_unreadable_raised_when_video_is_mangled(tmp_path: Path, suffix: str) -> None:
    """FFmpeg reports broken input as EIO/EPERM OSErrors; those must become UnreadableFile."""
    source = _write_video(tmp_path / f"source{suffix}").read_bytes()
    rng = random.Random(5)
    for index in range(24):
        data = bytearray(source)
        if index % 2:
            data = data[: rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randrange(1, 30)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"{index}{suffix}"
        path.write_bytes(bytes(data))
        for function in (read_metadata, make_thumbnails):
            with contextlib.suppress(UnreadableFile):
                function(str(path))


@needs_corpus
def test_unreadable_but_metadata_read_when_heif_is_cut_short(tmp_path: Path) -> None:
    """libheif would decode the missing tiles as green; a half-copied HEIC is refused instead."""
    data = (SAMPLES / "heic" / "IMG_5195.HEIC").read_bytes()
    path = tmp_path / "cut.heic"
    path.write_bytes(data[: len(data) // 8])
    with pytest.raises(UnreadableFile, match="truncated"):
        make_thumbnails(str(path))
    assert read_metadata(str(path)).model == "iPhone 11 Pro Max"  # the header is all there


def test_unreadable_when_video_with_index_up_front_is_cut_short(tmp_path: Path) -> None:
    """With moov first, FFmpeg still finds a first frame in a half-copied video."""
    source = _write_video(tmp_path / "whole.mp4", faststart=True)
    _check_sizes(make_thumbnails(str(source)))
    data = source.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(UnreadableFile, match="truncated"):
        make_thumbnails(str(path))


class TestVideo:
    def test_duration_size_and_date_read_when_video_is_valid(self, clip: Path) -> None:
        meta = read_metadata(str(clip))
        assert meta.duration_seconds == pytest.approx(2.0, abs=0.1)
        assert (meta.width, meta.height, meta.orientation) == (320, 240, 1)
        assert meta.mime_type == "video/mp4"
        assert meta.date_time_original == datetime(2021, 4, 11, 15, 47, 53, tzinfo=UTC)

    def test_frame_from_early_in_clip_when_thumbnailing_video(self, clip: Path) -> None:
        thumbs = make_thumbnails(str(clip))
        thumbnail, preview = _check_sizes(thumbs)
        assert (thumbs.width, thumbs.height) == (320, 240)
        assert thumbnail.size == (320, 240) and preview.size == (320, 240)  # never enlarged
        # 10% of 2 s = 0.2 s, inside the red first 0.6 s; the green marker stays top-left.
        assert _near(thumbnail.getpixel((200, 150)), RED)
        assert _near(thumbnail.getpixel((10, 10)), GREEN)

    def test_portrait_when_display_matrix_rotates(self, portrait_clip: Path) -> None:
        meta = read_metadata(str(portrait_clip))
        assert (meta.width, meta.height, meta.orientation) == (320, 240, 6)
        assert meta.display_size() == (240, 320)
        assert meta.mime_type == "video/quicktime"
        thumbs = make_thumbnails(str(portrait_clip))
        thumbnail, _ = _check_sizes(thumbs)
        assert (thumbs.width, thumbs.height) == (240, 320)
        assert thumbnail.size == (240, 320)
        # Rotating 90° clockwise moves the stored top-left marker to the top-right.
        assert _near(thumbnail.getpixel((230, 10)), GREEN)
        assert _near(thumbnail.getpixel((10, 10)), RED)
