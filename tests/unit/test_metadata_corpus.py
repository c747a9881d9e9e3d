"""read_metadata against exiftool's ground truth on the shared corpus, plus sidecars and RAW."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import struct
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from PIL import Image

from services.metadata.exif import UnreadableFile, read_metadata
from services.metadata.thumbs import make_thumbnails
from services.metadata.values import parse_date, parse_offset, zone_name
from services.metadata.xmp import apply_sidecar, find_sidecar
from shared.fence import Fence
from shared.metadata import AssetMetadata

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
SAMPLES = CORPUS / "exif-samples"
GROUND_TRUTH = CORPUS / "exif-samples.exiftool.json"
OUT_DIR = Path(__file__).resolve().parents[1] / "out"
DISAGREEMENTS = OUT_DIR / "metadata-disagreements.json"

AGREEMENT_BAR = 0.97
GPS_TOLERANCE = 1e-5
IMAGE_TYPES = frozenset({"JPEG", "TIFF", "HEIC", "PNG", "WEBP", "GIF"})

needs_corpus = pytest.mark.skipif(
    not (SAMPLES.is_dir() and GROUND_TRUTH.is_file()),
    reason=f"shared corpus not found at {CORPUS}",
)


def _corpus_files() -> list[str]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file())


@cache
def _ground_truth() -> dict[str, dict[str, Any]]:
    entries = json.loads(GROUND_TRUTH.read_text(encoding="utf-8"))
    return {e["SourceFile"].removeprefix("./"): e for e in entries}


@cache
def _read(rel: str) -> AssetMetadata | UnreadableFile:
    try:
        return read_metadata(str(SAMPLES / rel))
    except UnreadableFile as exc:
        return exc


def _is_image(entry: dict[str, Any] | None) -> bool:
    return entry is not None and entry.get("FileType") in IMAGE_TYPES and "Error" not in entry


# ------------------------------------------------------------------------------ comparison


def _norm_text(value: object) -> str:
    return " ".join(str(value).split())


def _wall_clock(value: str) -> str | None:
    parsed = parse_date(value)
    return parsed[0].strftime("%Y:%m:%d %H:%M:%S") if parsed else None


def _expected(entry: dict[str, Any]) -> dict[str, Any]:
    """The fields we compare, as exiftool -n reports them (absent when exiftool has none)."""
    out: dict[str, Any] = {}
    # Date taken: exiftool's own priority (DateTimeOriginal, CreateDate incl. XMP), then
    # ModifyDate, the IFD0 DateTime our reader falls back to last.
    raw_date = next(
        (entry[k] for k in ("DateTimeOriginal", "CreateDate", "ModifyDate") if entry.get(k)), None
    )
    if raw_date is not None:
        out["date_taken"] = _wall_clock(raw_date)
        parsed = parse_date(raw_date)
        offset = parsed[1] if parsed else None
        if offset is None and "DateTimeOriginal" in entry:
            offset_text = entry.get("OffsetTimeOriginal") or entry.get("OffsetTime")
            offset = parse_offset(offset_text)
        if offset is not None:
            out["time_zone"] = zone_name(offset)
    for field, key in (("latitude", "GPSLatitude"), ("longitude", "GPSLongitude")):
        if key in entry:
            out[field] = float(entry[key])
    for field, key in (("make", "Make"), ("model", "Model")):
        if key in entry:
            out[field] = _norm_text(entry[key])
    for field, key in (
        ("width", "ImageWidth"),
        ("height", "ImageHeight"),
        ("orientation", "Orientation"),
    ):
        if key in entry:
            out[field] = int(entry[key])
    return out


def _actual(meta: AssetMetadata) -> dict[str, Any]:
    local = meta.local_date_time
    return {
        "date_taken": local.strftime("%Y:%m:%d %H:%M:%S") if local else None,
        "time_zone": meta.time_zone,
        "latitude": meta.latitude,
        "longitude": meta.longitude,
        "make": _norm_text(meta.make) if meta.make else None,
        "model": _norm_text(meta.model) if meta.model else None,
        "width": meta.width,
        "height": meta.height,
        "orientation": meta.orientation,
    }


def _agrees(field: str, expected: Any, actual: Any) -> bool:
    if actual is None or expected is None:
        return actual is expected
    if field in ("latitude", "longitude"):
        return bool(abs(float(actual) - float(expected)) <= GPS_TOLERANCE)
    return bool(actual == expected)


def _compare_corpus() -> dict[str, Any]:
    compared = agreed = 0
    disagreements: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    for rel, entry in sorted(_ground_truth().items()):
        if not _is_image(entry) or not (SAMPLES / rel).is_file():
            continue
        result = _read(rel)
        expected = _expected(entry)
        actual = _actual(result) if isinstance(result, AssetMetadata) else {}
        for field, want in expected.items():
            compared += 1
            got = actual.get(field)
            if _agrees(field, want, got):
                agreed += 1
            else:
                disagreements.append({"file": rel, "field": field, "exiftool": want, "ours": got})
        for field, got in actual.items():
            if field not in expected and got is not None and field != "time_zone":
                extras.append({"file": rel, "field": field, "ours": got})
    return {
        "compared": compared,
        "agreed": agreed,
        "agreement": agreed / compared if compared else 0.0,
        "disagreements": disagreements,
        "values_exiftool_lacks": extras,
    }


# ---------------------------------------------------------------------------------- corpus


@needs_corpus
class TestCorpus:
    @pytest.mark.parametrize("rel", _corpus_files())
    def test_file_gives_metadata_or_unreadable_when_read(self, rel: str) -> None:
        """Never another exception, including for the broken files under jpg/invalid, jpg/tests
        and corrupted.jpg; files exiftool recognises as images are never reported unreadable."""
        entry = _ground_truth().get(rel)
        result = _read(rel)
        if _is_image(entry):
            assert isinstance(result, AssetMetadata), f"{rel}: {result}"
            assert result.checksum and result.file_size == (SAMPLES / rel).stat().st_size
        else:
            assert isinstance(result, UnreadableFile), f"{rel} is not an image: {result}"
        try:
            make_thumbnails(str(SAMPLES / rel))
        except UnreadableFile:
            assert not _is_image(entry) or "Warning" in (entry or {}), f"{rel} should decode"

    def test_reader_agrees_with_exiftool_when_comparing_every_field_it_reports(self) -> None:
        report = _compare_corpus()
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        DISAGREEMENTS.write_text(
            json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n",
            encoding="utf-8",
        )
        assert report["compared"] > 0
        assert report["agreement"] >= AGREEMENT_BAR, (
            f"{report['agreed']}/{report['compared']} fields agree "
            f"({report['agreement']:.1%}); see {DISAGREEMENTS}"
        )

    def test_reader_hashes_content_when_reading(self) -> None:
        import hashlib

        path = SAMPLES / "jpg" / "gps" / "DSCN0010.jpg"
        meta = read_metadata(str(path))
        assert meta.checksum == hashlib.sha1(path.read_bytes()).hexdigest()
        assert meta.file_modified_at == datetime.fromtimestamp(path.stat().st_mtime, UTC)

    def test_offset_applies_when_offset_time_original_present(self) -> None:
        meta = read_metadata(str(SAMPLES / "heic" / "IMG_5195.HEIC"))
        assert meta.time_zone == "UTC-5"
        assert meta.date_time_original == datetime(
            2021, 4, 11, 15, 47, 53, 54000, tzinfo=timezone(timedelta(hours=-5))
        )
        assert meta.local_date_time == datetime(2021, 4, 11, 15, 47, 53, 54000, tzinfo=UTC)
        assert meta.latitude == pytest.approx(39.0513444444, abs=1e-6)
        assert meta.longitude == pytest.approx(-94.2887722222, abs=1e-6)
        assert meta.mime_type == "image/heic"

    def test_heif_orientation_comes_from_irot_when_exif_says_otherwise(self) -> None:
        """Nokia writes EXIF Orientation 1 but rotates with irot; decoders follow irot."""
        meta = read_metadata(str(SAMPLES / "heic" / "mobile" / "HMD_Nokia_8.3_5G.heif"))
        assert (meta.width, meta.height, meta.orientation) == (4608, 3456, 6)
        assert meta.display_size() == (3456, 4608)

    def test_exif_fields_read_immich_style_when_present(self) -> None:
        meta = read_metadata(str(SAMPLES / "jpg" / "tests" / "87_OSError.jpg"))
        assert meta.exposure_time == "1/60"
        assert meta.f_number == pytest.approx(29.0)
        assert meta.focal_length == pytest.approx(60.0)
        assert meta.iso == 1000
        assert meta.lens_model == "18.0-70.0 mm f/3.5-4.5"

    def test_xmp_date_wins_over_ifd0_datetime_when_exif_has_no_original(self) -> None:
        meta = read_metadata(str(SAMPLES / "jpg" / "xmp" / "BlueSquare.jpg"))
        assert meta.local_date_time == datetime(2005, 9, 7, 15, 7, 40, tzinfo=UTC)
        assert meta.time_zone == "UTC-7"


# ---------------------------------------------------------------------------- failure modes


def _mangled(data: bytes, rng: random.Random) -> bytes:
    """Truncated, or with bytes overwritten (mostly in the header, where the parsers live)."""
    out = bytearray(data)
    kind = rng.choice(("truncate", "header", "anywhere"))
    if kind == "truncate":
        return bytes(out[: rng.randrange(1, len(out))])
    limit = min(len(out), 70_000) if kind == "header" else len(out)
    for _ in range(rng.randrange(1, 40)):
        out[rng.randrange(limit)] = rng.randrange(256)
    return bytes(out)


@needs_corpus
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # on mangled EXIF
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("seed", range(8))
def test_only_unreadable_raised_when_corpus_file_is_mangled(tmp_path: Path, seed: int) -> None:
    """A seeded fuzz over JPEG/HEIC/TIFF samples: metadata or UnreadableFile, nothing else.
    (Found exifread's HEIC BadSize escaping before it joined CONTENT_ERRORS.)"""
    rng = random.Random(seed)
    sources = sorted(
        p for p in SAMPLES.rglob("*") if p.suffix.lower() in (".jpg", ".heic", ".heif", ".tiff")
    )
    for index in range(12):
        source = rng.choice(sources)
        path = tmp_path / f"{index}{source.suffix}"
        path.write_bytes(_mangled(source.read_bytes(), rng))
        for function in (read_metadata, make_thumbnails):
            with contextlib.suppress(UnreadableFile):
                function(str(path))


class TestFailures:
    def test_unreadable_when_file_is_text(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.jpg"
        path.write_text("not a photo\n")
        with pytest.raises(UnreadableFile):
            read_metadata(str(path))

    def test_unreadable_when_file_is_empty(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.heic"
        path.write_bytes(b"")
        with pytest.raises(UnreadableFile):
            read_metadata(str(path))

    def test_file_not_found_propagates_when_file_vanished(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            read_metadata(str(tmp_path / "gone.jpg"))
        with pytest.raises(FileNotFoundError):
            read_metadata(str(tmp_path / "gone.mp4"))

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
    def test_permission_error_propagates_when_file_is_unreadable(self, tmp_path: Path) -> None:
        for name in ("locked.jpg", "locked.mp4"):
            path = tmp_path / name
            path.write_bytes(b"\xff\xd8\xff")
            path.chmod(0)
            with pytest.raises(PermissionError):
                read_metadata(str(path))
            with pytest.raises(PermissionError):
                make_thumbnails(str(path))

    def test_header_metadata_returned_when_pixel_data_is_truncated(self, tmp_path: Path) -> None:
        source = SAMPLES / "jpg" / "tests" / "42_IndexError.jpg"
        if not source.is_file():
            pytest.skip("corpus sample missing")
        data = source.read_bytes()
        path = tmp_path / "truncated.jpg"
        path.write_bytes(data[: len(data) // 3])
        meta = read_metadata(str(path))
        assert (meta.width, meta.height) == (4032, 3024)
        assert meta.local_date_time == datetime(2014, 8, 23, 13, 5, 43, tzinfo=UTC)
        with pytest.raises(UnreadableFile):
            make_thumbnails(str(path))

    def test_unreadable_when_image_is_a_decompression_bomb(self, tmp_path: Path) -> None:
        path = tmp_path / "bomb.png"
        buffer = io.BytesIO()
        Image.new("L", (8, 8)).save(buffer, "PNG")
        png = bytearray(buffer.getvalue())
        # Rewrite IHDR to claim 60000x60000 pixels (3.6 GP); the CRC is not checked on open.
        struct.pack_into(">II", png, 16, 60_000, 60_000)
        path.write_bytes(bytes(png))
        with pytest.raises(UnreadableFile):
            read_metadata(str(path))
        with pytest.raises(UnreadableFile):
            make_thumbnails(str(path))


# ---------------------------------------------------------------------------------- sidecars

_SIDECAR = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exif:DateTimeOriginal="2019-06-01T10:20:30+02:00"
    xmp:CreateDate="2001-01-01T00:00:00"
    exif:GPSLatitude="{lat}"
    exif:GPSLongitude="{lon}">
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Harbour at dusk</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""  # noqa: E501


def _photo(tmp_path: Path, name: str = "photo.jpg") -> Path:
    path = tmp_path / name
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    exif.get_ifd(0x8769)[0x9003] = "2010:01:02 03:04:05"
    Image.new("RGB", (40, 30), "red").save(path, "JPEG", exif=exif)
    return path


def _sidecar_of(photo: Path) -> str | None:
    """The real path of the sidecar find_sidecar opens for `photo`, fenced to its folder."""
    found = find_sidecar(Fence(str(photo.parent)), str(photo))
    if found is None:
        return None
    with found:
        return found.real


def _apply(meta: AssetMetadata, sidecar: Path) -> AssetMetadata:
    with Fence(str(sidecar.parent)).open_file(str(sidecar)) as opened:
        return apply_sidecar(meta, opened)


class TestSidecar:
    def test_jpg_xmp_preferred_when_both_sidecars_exist(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        assert _sidecar_of(photo) is None
        (tmp_path / "photo.xmp").write_text("x")
        assert _sidecar_of(photo) == str(tmp_path / "photo.xmp")
        (tmp_path / "photo.jpg.xmp").write_text("x")
        assert _sidecar_of(photo) == str(tmp_path / "photo.jpg.xmp")

    def test_sidecar_ignored_when_it_is_a_symlink_or_a_fifo(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        secret = tmp_path.parent / f"{tmp_path.name}-secret.xmp"
        secret.write_text(_SIDECAR.format(lat="10", lon="10"))
        (tmp_path / "photo.jpg.xmp").symlink_to(secret)
        os.mkfifo(tmp_path / "photo.xmp")
        assert _sidecar_of(photo) is None

    def test_sidecar_overrides_date_gps_description_when_present(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        sidecar = tmp_path / "photo.jpg.xmp"
        sidecar.write_text(_SIDECAR.format(lat="51,30.5N", lon="0,7.65W"))
        meta = read_metadata(str(photo))
        assert meta.local_date_time == datetime(2010, 1, 2, 3, 4, 5, tzinfo=UTC)

        merged = _apply(meta, sidecar)

        assert merged.sidecar_path == str(sidecar)
        assert merged.date_time_original == datetime(
            2019, 6, 1, 10, 20, 30, tzinfo=timezone(timedelta(hours=2))
        )
        assert merged.local_date_time == datetime(2019, 6, 1, 10, 20, 30, tzinfo=UTC)
        assert merged.time_zone == "UTC+2"
        assert merged.latitude == pytest.approx(51.508333, abs=1e-6)
        assert merged.longitude == pytest.approx(-0.1275, abs=1e-6)
        assert merged.description == "Harbour at dusk"
        assert merged.make == "Maker"  # untouched

    def test_decimal_gps_read_when_sidecar_uses_decimal_degrees(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        sidecar = tmp_path / "photo.xmp"
        sidecar.write_text(_SIDECAR.format(lat="-33.8568", lon="151.2153"))
        merged = _apply(read_metadata(str(photo)), sidecar)
        assert (merged.latitude, merged.longitude) == (-33.8568, 151.2153)

    def test_nothing_overridden_when_sidecar_declares_entities(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        sidecar = tmp_path / "photo.xmp"
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        )
        sidecar.write_text(bomb + _SIDECAR.format(lat="10", lon="10").replace("Harbour", "&lol2;"))
        meta = read_metadata(str(photo))
        merged = _apply(meta, sidecar)
        assert (merged.latitude, merged.description) == (None, None)
        assert merged.local_date_time == meta.local_date_time
        assert merged.sidecar_path == str(sidecar)

    def test_nothing_overridden_when_sidecar_is_malformed(self, tmp_path: Path) -> None:
        photo = _photo(tmp_path)
        sidecar = tmp_path / "photo.xmp"
        sidecar.write_text("<x:xmpmeta><rdf:RDF>")
        meta = read_metadata(str(photo))
        assert _apply(meta, sidecar) == msgspec.structs.replace(meta, sidecar_path=str(sidecar))


# -------------------------------------------------------------------------------------- RAW


def _tiff_raw(path: Path, *, orientation: int = 6) -> Path:
    """A minimal TIFF-structured RAW (NEF-like): IFD0 with a tiny preview size and EXIF/GPS,
    a SubIFD holding the 'sensor' size and a full-size embedded JPEG."""
    jpeg = io.BytesIO()
    preview = Image.new("RGB", (400, 300), "blue")
    preview.paste((255, 0, 0), (0, 0, 40, 40))  # marker in the stored top-left corner
    preview.save(jpeg, "JPEG", quality=90)
    jpeg_bytes = jpeg.getvalue()

    def ifd(entries: list[tuple[int, int, int, bytes]], base: int) -> tuple[bytes, bytes]:
        """entries: (tag, type, count, payload) -> (ifd bytes, out-of-line data), at base."""
        head = struct.pack("<H", len(entries))
        data_start = base + 2 + 12 * len(entries) + 4
        extra = b""
        for tag, kind, count, payload in sorted(entries):
            if len(payload) <= 4:
                head += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\x00")
            else:
                head += struct.pack("<HHII", tag, kind, count, data_start + len(extra))
                extra += payload + (b"\x00" if len(payload) % 2 else b"")
        return head + struct.pack("<I", 0), extra

    def ascii_(text: str) -> tuple[int, bytes]:
        raw = text.encode() + b"\x00"
        return len(raw), raw

    def rational(*values: tuple[int, int]) -> bytes:
        return b"".join(struct.pack("<II", n, d) for n, d in values)

    # Layout: header | IFD0 + data | EXIF IFD + data | GPS IFD + data | SubIFD + data | JPEG
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    make_n, make_b = ascii_("NIKON CORPORATION")
    model_n, model_b = ascii_("NIKON D850")
    placeholders = {"exif": 0, "gps": 0, "sub": 0}

    def build_ifd0() -> tuple[bytes, bytes]:
        return ifd(
            [
                (0x0100, 4, 1, struct.pack("<I", 160)),
                (0x0101, 4, 1, struct.pack("<I", 120)),
                (0x010F, 2, make_n, make_b),
                (0x0110, 2, model_n, model_b),
                (0x0112, 3, 1, struct.pack("<H", orientation)),
                (0x014A, 4, 1, struct.pack("<I", placeholders["sub"])),
                (0x8769, 4, 1, struct.pack("<I", placeholders["exif"])),
                (0x8825, 4, 1, struct.pack("<I", placeholders["gps"])),
            ],
            8,
        )

    ifd0, ifd0_data = build_ifd0()
    exif_at = 8 + len(ifd0) + len(ifd0_data)
    dto_n, dto_b = ascii_("2018:07:06 05:04:03")
    exif_ifd, exif_data = ifd(
        [
            (0x829A, 5, 1, rational((1, 500))),
            (0x829D, 5, 1, rational((28, 10))),
            (0x8827, 3, 1, struct.pack("<H", 400)),
            (0x9003, 2, dto_n, dto_b),
            (0x9011, 2, 7, b"+09:00\x00"),
        ],
        exif_at,
    )
    gps_at = exif_at + len(exif_ifd) + len(exif_data)
    gps_ifd, gps_data = ifd(
        [
            (0x0001, 2, 2, b"S\x00"),
            (0x0002, 5, 3, rational((33, 1), (51, 1), (2448, 100))),
            (0x0003, 2, 2, b"E\x00"),
            (0x0004, 5, 3, rational((151, 1), (12, 1), (5508, 100))),
        ],
        gps_at,
    )
    sub_at = gps_at + len(gps_ifd) + len(gps_data)
    jpeg_at = sub_at + 2 + 12 * 4 + 4
    sub_ifd, sub_data = ifd(
        [
            (0x0100, 4, 1, struct.pack("<I", 8256)),
            (0x0101, 4, 1, struct.pack("<I", 5504)),
            (0x0201, 4, 1, struct.pack("<I", jpeg_at)),
            (0x0202, 4, 1, struct.pack("<I", len(jpeg_bytes))),
        ],
        sub_at,
    )
    assert not sub_data
    placeholders.update(exif=exif_at, gps=gps_at, sub=sub_at)
    ifd0, ifd0_data = build_ifd0()
    out += ifd0 + ifd0_data + exif_ifd + exif_data + gps_ifd + gps_data + sub_ifd + jpeg_bytes
    path.write_bytes(bytes(out))
    return path


class TestRaw:
    def test_raw_read_with_exifread_and_sensor_size_when_tiff_based(self, tmp_path: Path) -> None:
        meta = read_metadata(str(_tiff_raw(tmp_path / "DSC_0001.NEF")))
        assert (meta.make, meta.model) == ("NIKON CORPORATION", "NIKON D850")
        assert (meta.width, meta.height, meta.orientation) == (8256, 5504, 6)
        assert meta.date_time_original == datetime(
            2018, 7, 6, 5, 4, 3, tzinfo=timezone(timedelta(hours=9))
        )
        assert meta.time_zone == "UTC+9"
        assert meta.latitude == pytest.approx(-(33 + 51 / 60 + 24.48 / 3600), abs=1e-9)
        assert meta.longitude == pytest.approx(151 + 12 / 60 + 55.08 / 3600, abs=1e-9)
        assert (meta.exposure_time, meta.f_number, meta.iso) == ("1/500", 2.8, 400)
        assert meta.mime_type == "image/nef"

    def test_raw_thumbnail_comes_from_embedded_jpeg_when_present(self, tmp_path: Path) -> None:
        thumbs = make_thumbnails(str(_tiff_raw(tmp_path / "DSC_0001.NEF")))
        assert (thumbs.width, thumbs.height) == (5504, 8256)  # upright sensor size
        with Image.open(io.BytesIO(thumbs.thumbnail)) as thumbnail:
            assert thumbnail.format == "JPEG"
            assert thumbnail.size == (250, 333)  # portrait: orientation 6 applied
            r, _g, b = thumbnail.convert("RGB").getpixel((thumbnail.width - 3, 2))  # type: ignore[misc]
            assert r > 200 and b < 80  # stored top-left marker is now top-right

    def test_unreadable_when_raw_has_no_tiff_structure(self, tmp_path: Path) -> None:
        path = tmp_path / "broken.cr2"
        path.write_bytes(b"\x00" * 4096)
        with pytest.raises(UnreadableFile):
            read_metadata(str(path))
        with pytest.raises(UnreadableFile):
            make_thumbnails(str(path))
