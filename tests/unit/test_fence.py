"""The fenced reads (shared/fence.py) on real files: links, escapes, special files, swap races."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.fence import Escape, Fence, NotRegular, chunks
from tests.fsrace import swapping


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Fence, Path, Path]:
    """A fence root with a photo in a folder, and a secret outside it."""
    root = tmp_path / "ext"
    (root / "album").mkdir(parents=True)
    (root / "album" / "a.jpg").write_bytes(b"inside")
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "a.jpg").write_bytes(b"SECRET")
    return Fence(str(root)), root, outside


def read(fence: Fence, path: str) -> bytes:
    with fence.open_file(path) as f:
        return b"".join(chunks(f))


class TestOpenFile:
    def test_reads_a_file_by_its_real_path(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        with fence.open_file(f"{root}/album/a.jpg") as f:
            assert f.real == f"{root}/album/a.jpg"
            assert os.read(f.fd, 100) == b"inside"
            assert Path(f.proc_path).read_bytes() == b"inside"

    def test_refuses_a_path_outside_the_root(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, outside = tree
        for path in (f"{outside}/a.jpg", f"{root}/../secret/a.jpg", f"{root}2/a.jpg", "rel"):
            with pytest.raises(Escape):
                fence.open_file(path)

    def test_symlink_in_place_of_the_file_counts_as_gone(
        self, tree: tuple[Fence, Path, Path]
    ) -> None:
        fence, root, outside = tree
        (root / "album" / "b.jpg").symlink_to(outside / "a.jpg")
        (root / "album" / "c.jpg").symlink_to("a.jpg")  # even one that stays inside
        for name in ("b.jpg", "c.jpg"):
            with pytest.raises(FileNotFoundError):
                fence.open_file(f"{root}/album/{name}")

    def test_symlink_in_place_of_a_folder_counts_as_gone(
        self, tree: tuple[Fence, Path, Path]
    ) -> None:
        fence, root, outside = tree
        (root / "link").symlink_to(outside)
        with pytest.raises(FileNotFoundError):
            fence.open_file(f"{root}/link/a.jpg")
        with pytest.raises(FileNotFoundError):
            fence.open_dir(f"{root}/link")

    def test_refuses_a_fifo_without_blocking(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        os.mkfifo(root / "album" / "pipe.jpg")
        with pytest.raises(NotRegular, match="FIFO"):
            fence.open_file(f"{root}/album/pipe.jpg")

    @pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
    def test_refuses_a_device(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        os.mknod(root / "album" / "zero.jpg", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        with pytest.raises(NotRegular, match="device"):
            fence.open_file(f"{root}/album/zero.jpg")

    def test_refuses_a_directory(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        with pytest.raises(NotRegular, match="directory"):
            fence.open_file(f"{root}/album")

    def test_reads_no_further_than_the_size_at_open(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        path = root / "album" / "growing.mov"
        path.write_bytes(b"x" * 10)
        with fence.open_file(str(path)) as f, path.open("ab") as writer:
            got = b""
            for data in chunks(f, size=4):
                writer.write(b"y" * 100)  # the file grows while it is read
                writer.flush()
                got += data
        assert got == b"x" * 10


class TestResolve:
    def test_follows_links_that_stay_inside(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        (root / "rel").symlink_to("album")
        (root / "abs").symlink_to(root / "album" / "a.jpg")
        (root / "album" / "up").symlink_to("../album")
        assert fence.resolve(f"{root}/rel/a.jpg")[0] == f"{root}/album/a.jpg"
        assert fence.resolve(f"{root}/abs")[0] == f"{root}/album/a.jpg"
        real, st = fence.resolve(f"{root}/album/up/up/a.jpg")
        assert real == f"{root}/album/a.jpg"
        assert stat.S_ISREG(st.st_mode)

    def test_refuses_links_that_leave(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, outside = tree
        (root / "abs").symlink_to(outside / "a.jpg")
        (root / "rel").symlink_to("../secret/a.jpg")
        (root / "round").symlink_to(f"{root}/../{root.name}/album")  # leaves, then comes back
        (root / "proc").symlink_to("/proc/self/root/etc/passwd")
        for name in ("abs", "rel", "round/a.jpg", "proc"):
            with pytest.raises(Escape):
                fence.resolve(f"{root}/{name}")

    def test_a_loop_is_an_error(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        (root / "x").symlink_to("y")
        (root / "y").symlink_to("x")
        with pytest.raises(OSError) as info:
            fence.resolve(f"{root}/x")
        assert info.value.errno == errno.ELOOP

    def test_a_dangling_link_is_not_found(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, _ = tree
        (root / "dangling").symlink_to("nowhere")
        with pytest.raises(FileNotFoundError):
            fence.resolve(f"{root}/dangling")


def race(attempt: Callable[[], bytes | str], expected: bytes | str) -> set[bytes | str]:
    """What `attempt` gave while names were being swapped, at least 2,000 times and until it
    gave `expected` once (proof the race was run: the file was met between swaps). An
    OSError is a fair answer mid-swap (the name is gone, or not a folder for an instant)."""
    seen: set[bytes | str] = set()
    for n in range(50_000):
        try:
            seen.add(attempt())
        except OSError as exc:
            seen.add(type(exc).__name__)
        if n >= 2000 and expected in seen:
            break
    return seen


class TestSwapRaces:
    """A user who can write inside the fence swaps names with RENAME_EXCHANGE while Shoebox
    reads: not one byte from outside may ever be read."""

    def test_file_swapped_for_a_link_to_outside(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, outside = tree
        bait = root / "album" / "bait"
        bait.symlink_to(outside / "a.jpg")
        with swapping(str(root / "album" / "a.jpg"), str(bait)):
            seen = race(lambda: read(fence, f"{root}/album/a.jpg"), b"inside")
        assert b"SECRET" not in seen
        assert b"inside" in seen

    def test_folder_swapped_for_a_link_to_outside(self, tree: tuple[Fence, Path, Path]) -> None:
        fence, root, outside = tree
        bait = root / "bait"
        bait.symlink_to(outside)

        def listing() -> str:
            with fence.open_dir(f"{root}/album") as d:
                return ",".join(sorted(e.name for e in os.scandir(d.fd)))

        (outside / "only-outside.jpg").write_bytes(b"x")
        with swapping(str(root / "album"), str(bait)):
            seen = race(lambda: read(fence, f"{root}/album/a.jpg"), b"inside")
            listed = race(listing, "a.jpg")
        assert b"SECRET" not in seen
        assert b"inside" in seen
        assert listed <= {"a.jpg", "FileNotFoundError", "NotADirectoryError", "OSError"}
        assert "a.jpg" in listed

    def test_resolve_never_leaves_while_links_are_swapped(
        self, tree: tuple[Fence, Path, Path]
    ) -> None:
        fence, root, outside = tree
        (root / "good").symlink_to("album")
        (root / "evil").symlink_to(outside)
        with swapping(str(root / "good"), str(root / "evil")):
            reals = race(lambda: fence.resolve(f"{root}/good/a.jpg")[0], f"{root}/album/a.jpg")
        assert reals <= {f"{root}/album/a.jpg", "Escape", "FileNotFoundError", "OSError"}
        assert f"{root}/album/a.jpg" in reals
