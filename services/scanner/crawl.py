"""Listing one directory for a scan: streaming, fenced, never following a link out."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.globs import ExclusionMatcher
from shared.media import asset_type, is_hidden, sidecar_candidates
from shared.paths import within

UPLOAD_FOLDER_SKIPPED = "inside the upload folder, which no external library may import; skipped"


class Entry(NamedTuple):
    """An eligible file found in a directory (its real path) — not yet stat'ed — and the mtime
    (ms) of its XMP sidecar, 0 without one."""

    path: str
    type: str
    sidecar_ms: int = 0


class Seen(NamedTuple):
    """An eligible file with what stat said."""

    path: str
    type: str
    mtime_ms: int
    size: int
    sidecar_ms: int = 0


@dataclass
class Listing:
    """What one directory holds, as far as a library cares."""

    files: list[Entry] = field(default_factory=list)
    subdirs: list[str] = field(default_factory=list)
    excluded: set[str] = field(default_factory=set)
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Fence:
    """The real external path of the library's owner, and the library's exclusions."""

    root: str
    matcher: ExclusionMatcher
    # Real folders never listed even inside the root: the upload folder, which holds every
    # user's uploads (an external path may contain the data folder, a link may lead into it).
    excluded_roots: tuple[str, ...] = ()

    def contains(self, real: str) -> bool:
        return within(self.root, real)

    def excludes(self, real: str) -> bool:
        """True when `real` is an excluded root or lies below one."""
        return any(within(x, real) for x in self.excluded_roots)


def _display(path: str) -> str:
    """A path for a message, even when its name is not valid UTF-8."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def list_dir(directory: str, fence: Fence) -> Listing:
    """List `directory` (a real path inside the fence) without reading any file.

    Hidden entries are skipped as Immich does; excluded paths are reported apart so their assets
    can go offline with the right reason; a symlink whose target leaves the fence, a symlink
    loop, and anything that is not a regular file or directory are reported as problems.
    """
    out = Listing()
    sidecars: dict[str, int] = {}
    with os.scandir(directory) as it:
        for entry in it:
            name = entry.name
            if is_hidden(name):
                continue
            path = entry.path
            if not _utf8(name):
                # PostgreSQL and JSON cannot hold it; skipped and reported, never crashed on.
                out.problems.append((_display(path), "name is not valid UTF-8; skipped"))
                continue
            try:
                is_link = entry.is_symlink()
                if is_link:
                    real = os.path.realpath(path)
                    if not fence.contains(real):
                        out.problems.append(
                            (_display(path), "symlink points outside the external path; skipped")
                        )
                        continue
                    if within(real, directory):
                        out.problems.append((_display(path), "symlink loop; skipped"))
                        continue
                    mode = os.stat(real).st_mode
                else:
                    real = path
                    mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue  # vanished while listing, or a dangling link: nothing to import
            except OSError as e:
                out.problems.append((_display(path), f"cannot read: {e.strerror or e}"))
                continue
            if fence.excludes(real):
                out.problems.append((_display(path), UPLOAD_FOLDER_SKIPPED))
                continue
            if stat.S_ISDIR(mode):
                # Exclusions are decided per file: a pattern such as `**/Raw/*.tif` can drop
                # some files of a folder and keep others.
                out.subdirs.append(real)
                continue
            kind = asset_type(name)
            if kind is None:
                if name[-4:].lower() == ".xmp" and stat.S_ISREG(mode):
                    with contextlib.suppress(OSError):
                        sidecars[real] = os.stat(real).st_mtime_ns // 1_000_000
                continue
            if not stat.S_ISREG(mode):
                out.problems.append((_display(path), "not a regular file; skipped"))
                continue
            if fence.matcher.matches(real):
                out.excluded.add(real)
                continue
            if not _utf8(real):
                out.problems.append((_display(path), "path is not valid UTF-8; skipped"))
                continue
            out.files.append(Entry(real, kind))
    if sidecars:
        out.files = [
            f._replace(
                sidecar_ms=next(
                    (sidecars[c] for c in sidecar_candidates(f.path) if c in sidecars), 0
                )
            )
            for f in out.files
        ]
    return out


def stat_file(entry: Entry) -> Seen | None:
    """mtime (ms) and size of an eligible file, None if it vanished since the listing."""
    try:
        st = os.stat(entry.path)
    except FileNotFoundError:
        return None
    return Seen(entry.path, entry.type, st.st_mtime_ns // 1_000_000, st.st_size, entry.sidecar_ms)
