"""Listing one folder: eligibility, hidden entries, links, and files that vanish."""

from __future__ import annotations

import os
from pathlib import Path

from services.scanner.crawl import Entry, Fence, list_dir, stat_file
from shared.globs import ExclusionMatcher


def _fence(root: Path, patterns: list[str] | None = None) -> Fence:
    return Fence(os.path.realpath(root), ExclusionMatcher(patterns or []))


def test_a_file_that_vanished_after_listing_is_not_seen(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (entry,) = list_dir(str(tmp_path), _fence(tmp_path)).files
    (tmp_path / "a.jpg").unlink()
    assert stat_file(entry) is None


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
