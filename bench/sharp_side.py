"""Immich's own image stack beside the pipeline: sharp (libvips) from the npm registry, one thread.

`bench/sharp/package.json` pins sharp; it is installed with npm into a cache folder under the
data folder (SHOEBOX_DATA, default ./data) on first use and reused. `bench/sharp/renditions.mjs`
makes Immich's two renditions of each file (see there) and prints the best round's files/s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "sharp"
PINNED = json.loads((HERE / "package.json").read_text())["dependencies"]


class Unavailable(Exception):
    """sharp cannot run here (no node or npm, the registry unreachable): the reason."""


def _cache() -> Path:
    return Path(os.environ.get("SHOEBOX_DATA", "./data")).resolve() / "cache" / "bench-sharp"


def _installed(folder: Path) -> str | None:
    manifest = folder / "node_modules" / "sharp" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def install() -> Path:
    """The folder holding the pinned sharp, installed with npm if it is not there yet."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node and npm are not installed")
    folder = _cache()
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "renditions.mjs"):
        shutil.copy(HERE / name, folder / name)
    if _installed(folder) != PINNED["sharp"]:
        try:
            result = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Unavailable("npm install timed out (is the npm registry reachable?)") from None
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"npm install sharp failed (is the npm registry reachable?): {last}")
    return folder


def rate(folder: Path, files: list[str], rounds: int, passes: int) -> tuple[float, list[str]]:
    """sharp's best files/s over `rounds` rounds of `passes` passes over `files`, and the files
    it cannot render (left out of its rounds)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump(files, listing)
    try:
        result = subprocess.run(
            ["node", str(folder / "renditions.mjs"), listing.name, str(rounds), str(passes)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    finally:
        os.unlink(listing.name)
    if result.returncode != 0:
        raise Unavailable(f"sharp failed: {result.stderr.strip()[-500:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return float(out["rate"]), list(out["failed"])
