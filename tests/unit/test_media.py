"""Immich's supported media types and the scan's eligibility rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.media import (
    IMAGE_EXTENSIONS,
    MIME_TYPES,
    SIDECAR_EXTENSIONS,
    VIDEO_EXTENSIONS,
    asset_type,
    extension,
    is_eligible,
    is_hidden,
    media_types_response,
    mime_type,
)

# Immich server/src/utils/mime-types.ts (image = raw + the rest; video; sidecar).
IMMICH_IMAGES = [
    ".3fr",
    ".ari",
    ".arw",
    ".avif",
    ".bmp",
    ".cap",
    ".cin",
    ".cr2",
    ".cr3",
    ".crw",
    ".dcr",
    ".dng",
    ".erf",
    ".fff",
    ".gif",
    ".heic",
    ".heif",
    ".hif",
    ".iiq",
    ".insp",
    ".jp2",
    ".jpe",
    ".jpeg",
    ".jpg",
    ".jxl",
    ".k25",
    ".kdc",
    ".mrw",
    ".nef",
    ".nrw",
    ".orf",
    ".ori",
    ".pef",
    ".png",
    ".psd",
    ".raf",
    ".raw",
    ".rw2",
    ".rwl",
    ".sr2",
    ".srf",
    ".srw",
    ".svg",
    ".tif",
    ".tiff",
    ".webp",
    ".x3f",
]
IMMICH_VIDEOS = [
    ".3gp",
    ".3gpp",
    ".avi",
    ".flv",
    ".insv",
    ".m2t",
    ".m2ts",
    ".m4v",
    ".mkv",
    ".mov",
    ".mp4",
    ".mpe",
    ".mpeg",
    ".mpg",
    ".mts",
    ".vob",
    ".webm",
    ".wmv",
]


class TestExtensionSets:
    def test_images_are_immichs(self) -> None:
        assert frozenset(IMMICH_IMAGES) == IMAGE_EXTENSIONS

    def test_videos_are_immichs(self) -> None:
        assert frozenset(IMMICH_VIDEOS) == VIDEO_EXTENSIONS

    def test_sidecar_is_xmp(self) -> None:
        assert frozenset({".xmp"}) == SIDECAR_EXTENSIONS

    def test_sets_are_disjoint_lowercase_and_dotted(self) -> None:
        everything = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | SIDECAR_EXTENSIONS
        assert len(everything) == len(IMAGE_EXTENSIONS) + len(VIDEO_EXTENSIONS) + 1
        assert all(e.startswith(".") and e == e.lower() for e in everything)

    def test_every_extension_has_a_mime_type_of_its_kind(self) -> None:
        assert set(MIME_TYPES) == IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | SIDECAR_EXTENSIONS
        assert all(MIME_TYPES[e].startswith("image/") for e in IMAGE_EXTENSIONS)
        assert all(MIME_TYPES[e].startswith("video/") for e in VIDEO_EXTENSIONS)

    @pytest.mark.parametrize(
        ("ext", "mime"),
        [
            (".jpg", "image/jpeg"),
            (".insp", "image/jpeg"),
            (".heic", "image/heic"),
            (".dng", "image/dng"),
            (".psd", "image/psd"),
            (".mov", "video/quicktime"),
            (".avi", "video/avi"),
            (".mts", "video/mp2t"),
            (".insv", "video/mp4"),
            (".xmp", "application/xml"),
        ],
    )
    def test_mime_type_is_immichs_first_choice(self, ext: str, mime: str) -> None:
        assert MIME_TYPES[ext] == mime
        assert mime_type(f"/x/a{ext.upper()}") == mime

    def test_mime_type_is_octet_stream_when_unknown(self) -> None:
        assert mime_type("/x/notes.txt") == "application/octet-stream"


class TestAssetType:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("/x/a.jpg", "IMAGE"),
            ("/x/a.JPG", "IMAGE"),
            ("/x/a.Cr3", "IMAGE"),
            ("/x/a.tar.heic", "IMAGE"),
            ("/x/clip.MP4", "VIDEO"),
            ("/x/clip.m2ts", "VIDEO"),
            ("/x/a.xmp", None),  # a sidecar is not an asset
            ("/x/a.jpg.xmp", None),
            ("/x/notes.txt", None),
            ("/x/jpg", None),
            ("/x/.jpg", None),  # node's extname: a lone leading dot is not an extension
            ("/x/a.", None),
        ],
    )
    def test_type_follows_extension_when_case_differs(
        self, path: str, expected: str | None
    ) -> None:
        assert asset_type(path) == expected

    @pytest.mark.parametrize(
        ("name", "ext"),
        [("a.b.JPG", ".jpg"), (".jpg", ""), ("..jpg", ".jpg"), ("a.", "."), ("..", ""), ("x", "")],
    )
    def test_extension_matches_node_extname(self, name: str, ext: str) -> None:
        assert extension(f"/dir.d/{name}") == ext

    @given(st.sampled_from(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)), st.text("aB1 _-"))
    def test_type_ignores_case_of_extension(self, ext: str, stem: str) -> None:
        path = f"/m/x{stem}{ext}"
        assert asset_type(path) == asset_type(path.upper()) == asset_type(path.lower())
        assert asset_type(path) is not None


class TestEligibility:
    @pytest.mark.parametrize(
        ("name", "hidden"),
        [(".DS_Store", True), ("._a.jpg", True), (".thumbs", True), ("a", False)],
    )
    def test_hidden_when_name_starts_with_a_dot(self, name: str, hidden: bool) -> None:
        assert is_hidden(name) is hidden

    @pytest.mark.parametrize(
        ("path", "eligible"),
        [
            ("/lib/a.jpg", True),
            ("/lib/2023/trip/a.MOV", True),
            ("/lib/.a.jpg", False),  # hidden file
            ("/lib/.thumbs/a.jpg", False),  # hidden directory below the import path
            ("/lib/x/.cache/y/a.jpg", False),
            ("/lib/a.txt", False),  # unsupported
            ("/lib/a.xmp", False),  # sidecars ride along with their asset
            ("/library/a.jpg", False),  # not below the import path
            ("/other/a.jpg", False),
        ],
    )
    def test_eligible_when_supported_and_not_hidden_below_import_path(
        self, path: str, eligible: bool
    ) -> None:
        assert is_eligible(path, "/lib") is eligible
        assert is_eligible(path, "/lib/") is eligible

    def test_eligible_when_import_path_itself_is_in_a_dot_directory(self) -> None:
        assert is_eligible("/home/u/.photos/2023/a.jpg", "/home/u/.photos")
        assert not is_eligible("/home/u/.photos/.trash/a.jpg", "/home/u/.photos")

    def test_only_file_name_is_checked_when_no_import_path(self) -> None:
        assert is_eligible("/home/u/.photos/a.jpg")
        assert not is_eligible("/home/u/photos/.a.jpg")

    def test_everything_is_below_root_import_path(self) -> None:
        assert is_eligible("/a/b.jpg", "/")


class TestMediaTypesResponse:
    def test_response_has_immichs_shape_and_is_sorted(self) -> None:
        body = media_types_response()
        assert set(body) == {"image", "video", "sidecar"}
        assert body["image"] == sorted(IMMICH_IMAGES)
        assert body["video"] == sorted(IMMICH_VIDEOS)
        assert body["sidecar"] == [".xmp"]


def test_sidecar_candidates_prefer_full_name() -> None:
    from shared.media import sidecar_candidates

    assert sidecar_candidates("/p/a.jpg")[:3] == ("/p/a.jpg.xmp", "/p/a.jpg.XMP", "/p/a.xmp")
