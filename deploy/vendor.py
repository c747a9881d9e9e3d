"""`make vendor`: fetch the pinned front-end packages from the npm registry into the web app.

Each package is fetched with `npm pack` (the registry's own tarball, checked by npm against the
registry's integrity hash), and only the files the pages load are copied under
services/api/web/static/vendor/<package>/. VERSIONS records each package's version, the
tarball's integrity and the sha256 of every copied file, so a change shows in review.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "services/api/web/static/vendor"

# package -> (pinned version, files inside the tarball's package/ folder)
PACKAGES: dict[str, tuple[str, list[str]]] = {
    "htmx.org": ("2.0.11", ["dist/htmx.min.js", "LICENSE"]),
    "htmx-ext-sse": ("2.2.4", ["dist/sse.min.js", "LICENSE"]),
    "leaflet": (
        "1.9.4",
        [
            "dist/leaflet.js",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
            "LICENSE",
        ],
    ),
    "leaflet.markercluster": (
        "1.5.3",
        [
            "dist/leaflet.markercluster.js",
            "dist/MarkerCluster.css",
            "dist/MarkerCluster.Default.css",
            "MIT-LICENCE.txt",
        ],
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(name: str, version: str, files: list[str], work: Path) -> list[str]:
    """Copy `files` of name@version into VENDOR/name; the lines VERSIONS records for it."""
    out = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(work), f"{name}@{version}"],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(out.stdout)[0]
    target = VENDOR / name
    shutil.rmtree(target, ignore_errors=True)
    lines = [f"{name}@{version} integrity={info['integrity']}"]
    with tarfile.open(work / info["filename"]) as tar:
        for rel in files:
            member = tar.extractfile(f"package/{rel}")
            if member is None:
                raise SystemExit(f"{name}@{version}: no {rel} in the package")
            dest = target / Path(rel).name if rel.startswith("dist/") else target / rel
            if rel.startswith("dist/images/"):
                dest = target / "images" / Path(rel).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(member.read())
            lines.append(f"  {sha256(dest)}  {dest.relative_to(VENDOR)}")
    return lines


def main() -> None:
    if shutil.which("npm") is None:
        sys.exit("make vendor needs npm (Debian: apt-get install npm)")
    VENDOR.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `make vendor` (deploy/vendor.py): package@version, then sha256  file"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, files) in PACKAGES.items():
            lines += fetch(name, version, files, Path(tmp))
    (VENDOR / "VERSIONS").write_text("\n".join(lines) + "\n")
    print(f"vendored {len(PACKAGES)} packages into {VENDOR}")


if __name__ == "__main__":
    main()
