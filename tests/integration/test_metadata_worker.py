"""The metadata worker's reads on real files: fenced against swaps, bounded in pixels and time."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from services.metadata.handlers import Extracted, extract
from services.metadata.pool import PoolClosed, WorkerPool, WorkerTimeout
from tests.factories import png_bomb
from tests.fsrace import swapping

NO_LIMIT = 1 << 50
# Reads of a swapped name go on until this many have read the file itself (most meet the
# symlink), or MOST_READS.
INSIDE_READS = 25
MOST_READS = 5000


def _photo(colour: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=95)
    return out.getvalue()


INSIDE = _photo("blue", (64, 48))
OUTSIDE = _photo("red", (40, 80))


def _outside_bytes_read(result: Extracted) -> bool:
    """Whether anything recorded comes from the outside image."""
    meta = result.metadata
    if meta is not None and (
        meta.checksum == hashlib.sha1(OUTSIDE).hexdigest()
        or meta.file_size == len(OUTSIDE)
        or (meta.width, meta.height) == (40, 80)
    ):
        return True
    if result.thumbnail is not None:
        with Image.open(io.BytesIO(result.thumbnail)) as thumb:
            red, _, blue = thumb.convert("RGB").getpixel((0, 0))  # type: ignore[misc]
            return bool(red > blue)
    return False


def _inside_read(result: Extracted) -> bool:
    meta = result.metadata
    return (
        meta is not None
        and meta.checksum == hashlib.sha1(INSIDE).hexdigest()
        and result.thumbnail is not None
    )


def _race(read: Callable[[], Extracted]) -> None:
    inside = reads = 0
    while inside < INSIDE_READS and reads < MOST_READS:
        result = read()
        assert not _outside_bytes_read(result), result.metadata
        inside += _inside_read(result)
        reads += 1
    assert inside > 0, f"in {reads} reads the race never let the worker read the file itself"


@pytest.fixture
def fenced(tmp_path: Path) -> tuple[Path, Path]:
    """An external path with album/photo.jpg, and outside it secret/photo.jpg."""
    root = tmp_path / "ext"
    (root / "album").mkdir(parents=True)
    (root / "album" / "photo.jpg").write_bytes(INSIDE)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "photo.jpg").write_bytes(OUTSIDE)
    return root, secret


class TestSwapRace:
    """A user swaps a scanned name for a symlink out of their external path, over and over,
    while the worker reads it: not one byte of the outside file is ever read."""

    def test_no_outside_bytes_read_when_the_file_is_swapped_for_a_symlink(
        self, fenced: tuple[Path, Path]
    ) -> None:
        root, secret = fenced
        photo = root / "album" / "photo.jpg"
        (root / "album" / "link.jpg").symlink_to(secret / "photo.jpg")
        with swapping(str(photo), str(root / "album" / "link.jpg")):
            _race(lambda: extract(str(root), str(photo), NO_LIMIT))

    def test_no_outside_bytes_read_when_its_folder_is_swapped_for_a_symlink(
        self, fenced: tuple[Path, Path]
    ) -> None:
        root, secret = fenced
        (root / "elsewhere").symlink_to(secret)
        with swapping(str(root / "album"), str(root / "elsewhere")):
            _race(lambda: extract(str(root), str(root / "album" / "photo.jpg"), NO_LIMIT))

    def test_sidecar_swapped_for_a_symlink_is_never_read(self, fenced: tuple[Path, Path]) -> None:
        root, secret = fenced
        xmp = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>{}</dc:description>'
            "</rdf:Description></rdf:RDF></x:xmpmeta>"
        )
        (root / "album" / "photo.jpg.xmp").write_text(xmp.format("mine"))
        (secret / "photo.jpg.xmp").write_text(xmp.format("SECRET"))
        (root / "album" / "link.xmp").symlink_to(secret / "photo.jpg.xmp")
        with swapping(str(root / "album" / "photo.jpg.xmp"), str(root / "album" / "link.xmp")):
            for _ in range(100):
                result = extract(str(root), str(root / "album" / "photo.jpg"), NO_LIMIT)
                assert result.metadata is not None
                assert result.metadata.description in (None, "mine")


class TestRefusedWithoutReading:
    def test_fifo_is_not_a_regular_file_and_never_blocks(self, fenced: tuple[Path, Path]) -> None:
        root, _ = fenced
        os.mkfifo(root / "album" / "pipe.jpg")
        result = extract(str(root), str(root / "album" / "pipe.jpg"), NO_LIMIT)
        assert result.failure is not None and "not a regular file" in result.failure

    def test_symlink_to_dev_zero_is_never_read(self, fenced: tuple[Path, Path]) -> None:
        root, _ = fenced
        (root / "album" / "zero.jpg").symlink_to("/dev/zero")
        result = extract(str(root), str(root / "album" / "zero.jpg"), NO_LIMIT)
        assert result.failure == "the file disappeared before it could be read"

    def test_sparse_file_over_the_size_limit_is_too_large(self, fenced: tuple[Path, Path]) -> None:
        root, _ = fenced
        huge = root / "album" / "huge.jpg"
        huge.write_bytes(INSIDE)
        os.truncate(huge, 100 << 30)  # 100 GB, sparse
        result = extract(str(root), str(huge), 64 << 30)
        assert result.failure is not None and result.failure.startswith("file too large")

    def test_path_outside_the_fence_is_refused(self, fenced: tuple[Path, Path]) -> None:
        root, secret = fenced
        result = extract(str(root), str(secret / "photo.jpg"), NO_LIMIT)
        assert result.failure == "not read: outside the external path"


def test_png_claiming_50000_squared_pixels_read_in_little_memory(tmp_path: Path) -> None:
    """296 KB on disk, 2.5 GB decoded: its header and size are recorded, its pixels never
    decoded (peak RSS of the reading process measured; generous bound)."""
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1 << 20
    probe = (
        "import sys\n"
        "from services.metadata.handlers import extract\n"
        "r = extract(sys.argv[1], sys.argv[2], 1 << 40)\n"
        "print(r.metadata.width, r.metadata.height, r.metadata.checksum is not None)\n"
        "print(r.thumbnail_failure)\n"
        # VmHWM, not ru_maxrss: Linux carries a forked parent's peak across exec into the
        # child's ru_maxrss, so a big test process (HEIC decodes before this test) counted.
        "print(next(line.split()[1] for line in open('/proc/self/status')"
        " if line.startswith('VmHWM:')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), str(bomb)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "50000 50000 True"
    assert out[1].startswith("no thumbnail")
    peak_mb = int(out[2]) / 1024
    assert peak_mb < 500, f"the reading process peaked at {peak_mb:.0f} MB"


async def test_worker_past_its_time_bound_is_killed_and_the_next_file_read(
    fenced: tuple[Path, Path],
) -> None:
    """A 13,000 x 13,000 PNG (20 KB) takes the better part of a second to read; with a time
    bound of 0.1 s its worker is killed, and the replacement reads the next file."""
    root, _ = fenced
    slow = png_bomb(root / "album" / "slow.png", 13_000)
    pool = WorkerPool(1, preload=("services.metadata.handlers",))
    try:
        (first,) = pool.pids
        with pytest.raises(WorkerTimeout):
            await pool.run(0.1, extract, str(root), str(slow), NO_LIMIT)
        assert first not in pool.pids
        result = await pool.run(60, extract, str(root), str(root / "album" / "photo.jpg"), NO_LIMIT)
        assert _inside_read(result)
    finally:
        await pool.close()
    assert not _alive(first)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_closing_the_pool_gives_back_every_file_waiting_for_a_worker(
    fenced: tuple[Path, Path],
) -> None:
    """A folder's births wait for workers many at a time: a stop must not leave them waiting
    (the service would sit out its shutdown and be cancelled with a traceback)."""
    root, _ = fenced
    slow = png_bomb(root / "album" / "slow.png", 13_000)
    pool = WorkerPool(1, preload=("services.metadata.handlers",))
    busy = asyncio.create_task(pool.run(60, extract, str(root), str(slow), NO_LIMIT))
    waiting = [
        asyncio.create_task(pool.run(60, extract, str(root), str(slow), NO_LIMIT)) for _ in range(3)
    ]
    await asyncio.sleep(0)  # the input: they start waiting, one busy with the worker
    await asyncio.wait_for(pool.close(), 10)
    results = await asyncio.wait_for(asyncio.gather(busy, *waiting, return_exceptions=True), 10)
    assert all(isinstance(r, PoolClosed) for r in results[1:]), results
