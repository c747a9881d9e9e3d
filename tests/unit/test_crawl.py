"""Listing one folder: eligibility, hidden entries, links, and files that vanish."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from services.scanner.crawl import Entry, Fence, fingerprint_digest, list_dir
from shared.globs import ExclusionMatcher


def _fence(root: Path, patterns: list[str] | None = None) -> Fence:
    assert os.path.realpath(root) == str(root)
    return Fence(str(root), ExclusionMatcher(patterns or []))


def test_a_file_that_vanished_after_listing_is_not_seen(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    listing = list_dir(str(tmp_path), _fence(tmp_path))
    (entry,) = listing.files
    (tmp_path / "a.jpg").unlink()
    assert listing.stat(entry) is None


def test_listing_keeps_media_drops_hidden_and_reports_excluded(tmp_path: Path) -> None:
    for name in ("a.JPG", "b.mp4", "c.txt", ".d.jpg", "e.tif", "f.jpg.xmp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "sub").mkdir()
    listing = list_dir(str(tmp_path), _fence(tmp_path, ["**/*.tif"]))
    assert sorted(Path(f.path).name for f in listing.files) == ["a.JPG", "b.mp4"]
    assert [Path(p).name for p in listing.excluded] == ["e.tif"]
    assert [Path(p).name for p in listing.subdirs] == ["sub"]


def test_sidecar_mtime_is_attached_to_its_file(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.jpg.xmp").write_bytes(b"<x/>")
    os.utime(tmp_path / "a.jpg.xmp", (1_600_000_000, 1_600_000_000))
    (entry,) = list_dir(str(tmp_path), _fence(tmp_path)).files
    assert entry == Entry(str(tmp_path / "a.jpg"), "IMAGE", 1_600_000_000_000)


def test_links_inside_are_followed_and_links_out_are_problems(tmp_path: Path) -> None:
    root, outside = tmp_path / "ext", tmp_path / "outside"
    (root / "album").mkdir(parents=True)
    outside.mkdir()
    (root / "album" / "a.jpg").write_bytes(b"x")
    (outside / "b.jpg").write_bytes(b"y")
    (root / "lib").mkdir()
    (root / "lib" / "inside.jpg").symlink_to(root / "album" / "a.jpg")
    (root / "lib" / "album").symlink_to("../album")
    (root / "lib" / "out.jpg").symlink_to(outside / "b.jpg")
    (root / "lib" / "outdir").symlink_to(outside)
    (root / "lib" / "self").symlink_to(".")
    listing = list_dir(str(root / "lib"), _fence(root))
    (entry,) = listing.files
    assert entry.path == str(root / "album" / "a.jpg")
    seen = listing.stat(entry)
    assert seen is not None and seen.size == 1
    assert listing.subdirs == [str(root / "album")]
    assert sorted((Path(p).name, m) for p, m in listing.problems) == [
        ("out.jpg", "symlink points outside the external path; skipped"),
        ("outdir", "symlink points outside the external path; skipped"),
        ("self", "symlink loop; skipped"),
    ]


def test_a_folder_swapped_for_a_symlink_is_not_listed(tmp_path: Path) -> None:
    root, outside = tmp_path / "ext", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"y")
    (root / "album").symlink_to(outside)  # was a folder when it was queued
    with pytest.raises(FileNotFoundError):
        list_dir(str(root / "album"), _fence(root))


def test_a_file_swapped_after_listing_is_stat_in_the_listed_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "ext", tmp_path / "outside"
    (root / "album").mkdir(parents=True)
    outside.mkdir()
    (root / "album" / "a.jpg").write_bytes(b"x")
    (outside / "a.jpg").write_bytes(b"y" * 1000)
    listing = list_dir(str(root / "album"), _fence(root))
    (entry,) = listing.files
    (root / "album" / "a.jpg").unlink()
    (root / "album" / "a.jpg").symlink_to(outside / "a.jpg")
    assert listing.stat(entry) is None  # not the outside file's size


FOLDER_CASES = [
    # (pattern, file below the import path, excluded as Immich's crawler excludes it)
    ("**/directoryA", "directoryA/assetA.png", True),
    ("**/directoryA", "directoryA/deep/c.jpg", True),
    ("**/directoryA", "directoryB/b.jpg", False),
    ("**/directoryA", "directoryAB/b.jpg", False),
    ("**/DIRECTORYA", "directoryA/x.jpg", True),  # nocase, as the file patterns
    ("**/@eaDir/**", "@eaDir/thumb.jpg", True),
    ("**/Raw", "2024/raw/IMG_1.jpg", True),
    ("**/*.tif", "scans/a.tif", True),
    ("**/*.tif", "scans.tif/a.jpg", True),  # a folder named like the pattern, too
    ("**/scans/*.jpg", "scans/a.jpg", True),
    ("**/scans/*.jpg", "scans/deep/a.jpg", False),
]


@pytest.mark.parametrize("pattern, relative, excluded", FOLDER_CASES)
def test_scanner_and_watcher_agree_on_folders_a_pattern_names(
    tmp_path: Path, pattern: str, relative: str, excluded: bool
) -> None:
    from watchdog.events import FileCreatedEvent

    from services.watcher.observer import ImportPathHandler

    root = tmp_path / "import"
    file = root / relative
    file.parent.mkdir(parents=True)
    file.write_bytes(b"x")
    fence = _fence(tmp_path, [pattern])
    listing = list_dir(str(file.parent), fence, str(root))
    assert (str(file) in listing.excluded) is excluded
    assert (str(file) in {f.path for f in listing.files}) is not excluded
    handler = ImportPathHandler(
        uuid.uuid4(), str(root), fence.matcher, native=True, sink=lambda t: None
    )
    assert (handler.touches(FileCreatedEvent(str(file))) == []) is excluded


def test_the_import_path_itself_is_never_tested(tmp_path: Path) -> None:
    root = tmp_path / "directoryA"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"x")
    listing = list_dir(str(root), _fence(tmp_path, ["**/directoryA"]), str(root))
    assert [Path(f.path).name for f in listing.files] == ["a.jpg"]


def _at_ms(path: Path, ms: int) -> None:
    os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))


class TestFingerprint:
    """What a *modified* scan compares with PostgreSQL's fingerprint of a folder's assets."""

    def test_a_folder_fingerprint_is_its_files_in_code_point_order(self, tmp_path: Path) -> None:
        for name, ms in (("\u00e9.jpg", 5), ("z.jpg", 7), ("z.jpg.xmp", 9)):
            (tmp_path / name).write_bytes(b"x")
            _at_ms(tmp_path / name, ms)
        listing = list_dir(str(tmp_path), _fence(tmp_path), stat_files=True)
        assert listing.fingerprint_text() == f"{tmp_path}/z.jpg|7|9\n{tmp_path}/\u00e9.jpg|5|0"
        empty = tmp_path / "empty"
        empty.mkdir()
        assert list_dir(str(empty), _fence(tmp_path), stat_files=True).fingerprint_text() == ""

    def test_any_change_of_mtime_or_sidecar_changes_the_fingerprint(self, tmp_path: Path) -> None:
        (tmp_path / "a.jpg").write_bytes(b"x")
        _at_ms(tmp_path / "a.jpg", 5)
        prints = [list_dir(str(tmp_path), _fence(tmp_path), stat_files=True).fingerprint()]
        _at_ms(tmp_path / "a.jpg", 6)
        prints.append(list_dir(str(tmp_path), _fence(tmp_path), stat_files=True).fingerprint())
        (tmp_path / "a.xmp").write_bytes(b"<x/>")
        _at_ms(tmp_path / "a.xmp", 1)
        prints.append(list_dir(str(tmp_path), _fence(tmp_path), stat_files=True).fingerprint())
        assert prints[0] == fingerprint_digest(f"{tmp_path}/a.jpg|5|0")
        assert len(set(prints)) == 3

    def test_a_folder_with_a_stray_sidecar_or_a_link_prints_its_files_alike(
        self, tmp_path: Path
    ) -> None:
        """The common folder is printed without an Entry per file: the same string as the
        general path, which folders with sidecars or links take."""
        (tmp_path / "a.jpg").write_bytes(b"x")
        _at_ms(tmp_path / "a.jpg", 5)
        plain = list_dir(str(tmp_path), _fence(tmp_path), stat_files=True).fingerprint()
        (tmp_path / "nobody.xmp").write_bytes(b"<x/>")
        assert list_dir(str(tmp_path), _fence(tmp_path), stat_files=True).fingerprint() == plain
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "b.jpg").symlink_to(tmp_path / "a.jpg")
        linked = list_dir(str(tmp_path / "sub"), _fence(tmp_path), stat_files=True)
        assert linked.fingerprint() == plain  # the link's file is known by its real path

    def test_a_listing_without_stats_is_compared_file_by_file(self, tmp_path: Path) -> None:
        (tmp_path / "a.jpg").write_bytes(b"x")
        assert list_dir(str(tmp_path), _fence(tmp_path)).fingerprint() is None
        listing = list_dir(str(tmp_path), _fence(tmp_path), stat_files=True)
        assert listing.fingerprint() is not None
        listing.close()
        (seen,) = listing.seen()  # stat'ed while listed: no folder needed
        assert (seen.path, seen.size) == (str(tmp_path / "a.jpg"), 1)

    def test_a_linked_file_keeps_its_sidecar(self, tmp_path: Path) -> None:
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "a.jpg").write_bytes(b"x")
        _at_ms(tmp_path / "real" / "a.jpg", 5)
        (tmp_path / "lib").mkdir()
        (tmp_path / "lib" / "a.jpg").symlink_to(tmp_path / "real" / "a.jpg")
        (tmp_path / "real" / "a.jpg.xmp").write_bytes(b"<x/>")
        _at_ms(tmp_path / "real" / "a.jpg.xmp", 9)
        (tmp_path / "lib" / "a.jpg.xmp").symlink_to(tmp_path / "real" / "a.jpg.xmp")
        listing = list_dir(str(tmp_path / "lib"), _fence(tmp_path), stat_files=True)
        assert listing.fingerprint_text() == f"{tmp_path}/real/a.jpg|5|9"
