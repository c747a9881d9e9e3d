"""Files/s of read_metadata + make_thumbnails on the corpus (1, 2 processes) vs Pillow floors,
and beside Immich's own stack (sharp, libvips) on the files both read."""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from bench import sharp_side
from services.metadata.exif import UnreadableFile, read_metadata
from services.metadata.thumbs import (
    PREVIEW_FILTER,
    PREVIEW_SIZE,
    THUMBNAIL_FILTER,
    THUMBNAIL_SIZE,
    fit_outside,
    make_thumbnails,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# Run: ``.venv/bin/python bench/metadata.py`` (or ``-m bench.metadata``); about 3 min on 2 cores.
# ``--beside-sharp`` prints only the figures beside sharp.
#
# Two floors, measured in the same run on the same files, each bare Pillow in one process:
#
# - *renditions floor* (the target's): Pillow making the same two renditions the pipeline must
#   make and nothing else: open, ``draft()`` for JPEG, resize to the 1440 px preview and save it as
#   JPEG, resize that to the 250 px thumbnail and save it, with the pipeline's sizes and filters.
# - *thumbnail-only floor*: open, ``draft()`` for JPEG, ``thumbnail((250, 250))``, save a JPEG.
#   It skips the preview, and a 1440 px preview needs a JPEG decoded at 1/2 or full scale where
#   250 px needs 1/8, so no pipeline that makes the preview can come near it; it is printed to
#   show what the preview costs (decision 0007).
#
# The pipeline does more than either: it hashes the whole file, parses EXIF/XMP, orients, keeps
# the colour profile, flattens alpha and handles every mode. Workers return only the rendition
# sizes; a real worker writes the bytes to storage itself.

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "exif-samples"
TARGET_SECONDS = 10.0
MIN_ROUNDS = 3  # each figure is the best round; a round is whole passes over the same files
CHUNKSIZE = 4
TARGET_RATIO = 1.5
SHARP_TARGET = 1.2  # issue 16: the pipeline at >= 1.2x sharp's files/s, per process
SHARP_ROUNDS = 5


def pipeline(path: str) -> int:
    """What the metadata worker does per file; returns the rendition bytes produced."""
    read_metadata(path)
    thumbs = make_thumbnails(path)
    return len(thumbs.thumbnail) + len(thumbs.preview)


def metadata_only(path: str) -> int:
    return read_metadata(path).file_size


def thumbnails_only(path: str) -> int:
    thumbs = make_thumbnails(path)
    return len(thumbs.thumbnail) + len(thumbs.preview)


def _jpeg_size(image: Image.Image) -> int:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.tell()


def renditions_floor(path: str) -> int:
    """Bare Pillow making the pipeline's two renditions: preview, then thumbnail from it."""
    with Image.open(path) as image:
        preview_size = fit_outside(image.size, PREVIEW_SIZE)
        if image.format == "JPEG":
            image.draft("RGB", preview_size)
        image.thumbnail(preview_size, PREVIEW_FILTER)
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        written = _jpeg_size(rgb)
        rgb.thumbnail(fit_outside(rgb.size, THUMBNAIL_SIZE), THUMBNAIL_FILTER)
        return written + _jpeg_size(rgb)


def thumbnail_floor(path: str) -> int:
    """Bare Pillow: open, draft for JPEG, thumbnail 250, JPEG to memory."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (250, 250))
        image.thumbnail((250, 250))
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return _jpeg_size(rgb)


def _noop(_: int) -> int:
    return os.getpid()


def readable_images() -> list[str]:
    """Every corpus file the pipeline accepts (READMEs and the like raise UnreadableFile)."""
    paths = []
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file()):
        try:
            pipeline(str(path))
        except UnreadableFile:
            continue
        paths.append(str(path))
    return paths


def in_process(function: Callable[[str], int], rounds: Sequence[Sequence[str]]) -> float:
    """Best files/s over the rounds, calling function in this process."""
    rates = []
    for chunk in rounds:
        start = time.perf_counter()
        for path in chunk:
            function(path)
        rates.append(len(chunk) / (time.perf_counter() - start))
    return max(rates)


def in_pool(workers: int, rounds: Sequence[Sequence[str]]) -> float:
    """Best files/s over the rounds, running the pipeline in a pool of warm worker processes."""
    rates = []
    # Spawned, as the service's pool is: a child forked from a process where libvips has started
    # its threads can deadlock in it.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        list(pool.map(_noop, range(workers * 4)))  # start every worker before timing
        for chunk in rounds:
            start = time.perf_counter()
            for _ in pool.map(pipeline, chunk, chunksize=CHUNKSIZE):
                pass
            rates.append(len(chunk) / (time.perf_counter() - start))
    return max(rates)


def main() -> None:
    if not CORPUS.is_dir():
        sys.exit(f"corpus not found at {CORPUS}")
    files = readable_images()  # also warms caches and imports
    megabytes = sum(os.path.getsize(p) for p in files) / 1e6
    start = time.perf_counter()
    for path in files:
        pipeline(path)
    one_pass = time.perf_counter() - start
    # ~TARGET_SECONDS of pipeline work per figure, in at least MIN_ROUNDS rounds of whole passes
    # (shuffled so the big HEICs spread over each pool run).
    passes_per_round = max(1, math.ceil(TARGET_SECONDS / MIN_ROUNDS / one_pass))
    rng = random.Random(0)
    rounds = []
    for _ in range(MIN_ROUNDS):
        chunk = files * passes_per_round
        rng.shuffle(chunk)
        rounds.append(chunk)

    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    if "--beside-sharp" in sys.argv[1:]:  # only the side-by-side figures
        beside_sharp(files, passes_per_round)
        return
    print(
        f"corpus: {len(files)} readable images, {megabytes:.1f} MB; {MIN_ROUNDS} rounds of "
        f"{passes_per_round} pass(es) = {len(rounds[0])} files each; best round reported"
    )
    floor_rate = in_process(renditions_floor, rounds)
    narrow_rate = in_process(thumbnail_floor, rounds)
    print(f"floor: Pillow, same 1440 + 250 px renditions, 1 process:  {floor_rate:8.1f} files/s")
    print(f"       Pillow, 250 px thumbnail only, 1 process:         {narrow_rate:8.1f} files/s")
    meta_rate = in_process(metadata_only, rounds)
    thumbs_rate = in_process(thumbnails_only, rounds)
    both_rate = in_process(pipeline, rounds)
    print(f"in-process read_metadata only:                  {meta_rate:8.1f} files/s")
    print(f"in-process make_thumbnails only:                {thumbs_rate:8.1f} files/s")
    print(f"in-process read_metadata + make_thumbnails:     {both_rate:8.1f} files/s")
    for label, suffixes in (("JPEG", (".jpg", ".jpeg")), ("HEIF", (".heic", ".heif"))):
        subset = [p for p in files if p.lower().endswith(suffixes)]
        subset_rounds = [subset] * MIN_ROUNDS
        f_rate = in_process(renditions_floor, subset_rounds)
        n_rate = in_process(thumbnail_floor, subset_rounds)
        p_rate = in_process(pipeline, subset_rounds)
        print(
            f"  {label} only ({len(subset)} files), in-process: pipeline {p_rate:7.1f} files/s; "
            f"renditions floor {f_rate:7.1f} ({f_rate / p_rate:.2f}x), "
            f"thumbnail-only floor {n_rate:7.1f} ({n_rate / p_rate:.2f}x)"
        )
    beside_sharp(files, passes_per_round)
    for workers in (1, 2):
        rate = in_pool(workers, rounds)
        per_worker = rate / workers
        ratio = floor_rate / per_worker
        verdict = "within" if ratio <= TARGET_RATIO else "outside"
        print(
            f"pool {workers} worker{'s' if workers > 1 else ' '}: {rate:8.1f} files/s, "
            f"{per_worker:8.1f} per worker = {ratio:.2f}x the renditions floor "
            f"({verdict} the {TARGET_RATIO}x target), {narrow_rate / per_worker:.2f}x the "
            "thumbnail-only floor"
        )


def beside_sharp(files: list[str], passes: int) -> None:
    """sharp (one thread) making Immich's two renditions, the pipeline with one worker, and the
    renditions floor, on the files sharp reads (its libvips has no HEVC: no HEIC), in one run."""
    try:
        folder = sharp_side.install()
        sharp_rate, failed = sharp_side.rate(folder, files, 1, passes)
    except sharp_side.Unavailable as e:
        print(f"sharp: skipped ({e})")
        return
    common = [f for f in files if f not in set(failed)]
    one_round = [common * passes]
    # Interleaved rounds, the best of each kind: on a shared machine the load moves between
    # rounds, and each contender gets its quiet moments alike.
    pipeline_rate = renditions_rate = floor_rate = 0.0
    for _ in range(SHARP_ROUNDS):
        sharp_rate = max(sharp_rate, sharp_side.rate(folder, common, 1, passes)[0])
        pipeline_rate = max(pipeline_rate, in_pool(1, one_round))
        renditions_rate = max(renditions_rate, in_process(thumbnails_only, one_round))
        floor_rate = max(floor_rate, in_process(renditions_floor, one_round))
    ratio = pipeline_rate / sharp_rate
    verdict = "meets" if ratio >= SHARP_TARGET else "misses"
    print(
        f"beside sharp {sharp_side.PINNED['sharp']} (libvips, 1 thread), on the {len(common)} "
        f"files it reads ({len(failed)} it cannot), best of {SHARP_ROUNDS} interleaved rounds:"
    )
    print(f"  sharp, Immich's preview + thumbnail:      {sharp_rate:8.1f} files/s")
    print(
        f"  Shoebox pipeline, 1 worker:               {pipeline_rate:8.1f} files/s = "
        f"{ratio:.2f}x sharp ({verdict} the {SHARP_TARGET}x target)"
    )
    print(
        f"  Shoebox renditions only, in process:      {renditions_rate:8.1f} files/s = "
        f"{renditions_rate / sharp_rate:.2f}x sharp (no SHA-1, EXIF or worker pool)"
    )
    print(
        f"  bare Pillow renditions floor, 1 process:  {floor_rate:8.1f} files/s = "
        f"{floor_rate / sharp_rate:.2f}x sharp (the pipeline: {pipeline_rate / floor_rate:.2f}x it)"
    )


if __name__ == "__main__":
    main()
