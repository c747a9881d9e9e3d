"""The scan's looks at the disk besides listing: import paths, devices, indexed folders' mtimes.

Every function here blocks; handlers run them in a thread.
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import TYPE_CHECKING, NamedTuple

from services.scanner.rules import RootProbe
from shared.importpath import PathProblem
from shared.media import is_hidden
from shared.paths import import_path_problem, within

if TYPE_CHECKING:
    from services.scanner.crawl import Fence
    from services.scanner.repository import IndexEntry


class CheckedPath(NamedTuple):
    """An import path, its real path ("" when unusable) and why it is unusable (None if not)."""

    path: str
    real: str
    problem: PathProblem | None


def check_import_paths(
    paths: tuple[str, ...], external: str | None, upload_root: str | None = None
) -> list[CheckedPath]:
    """Each import path checked as the validate route checks it."""
    out = []
    for path in paths:
        problem = import_path_problem(path, external, upload_root)
        out.append(CheckedPath(path, os.path.realpath(path) if problem is None else "", problem))
    return out


def device_of(path: str) -> int:
    """The file system a folder is on (`st_dev`); tests stand in for a mounted drive here."""
    return os.stat(path).st_dev


def probe_root(fence: Fence, real: str) -> RootProbe:
    """Whether a usable import path is empty, and its device and its parent's."""
    with fence.files.open_dir(real) as opened, os.scandir(opened.fd) as it:
        empty = not any(not is_hidden(entry.name) for entry in it)
    return RootProbe(empty, device_of(real), device_of(posixpath.dirname(real)))


def root_lost(fence: Fence, import_path: str) -> bool:
    """Whether an import path is gone or empty now (its drive was unplugged)."""
    try:
        return probe_root(fence, os.path.realpath(import_path)).empty
    except OSError:
        return True


def unchanged_dirs(
    index: dict[str, IndexEntry], roots: list[str], current_hash: str
) -> tuple[list[str], list[str]]:
    """Stat every indexed folder under `roots`; return (to list, unchanged).

    A folder whose mtime and patterns hash match its index entry has the same entries as when
    it was listed (adding, removing or renaming an entry changes a folder's mtime), so a *new*
    scan does not list it. A vanished folder is left to its parent, whose mtime changed.
    """
    to_list: list[str] = []
    same: list[str] = []
    for path, (mtime_ns, phash) in index.items():
        if not any(within(r, path) for r in roots):
            continue
        try:
            # Only a decision to list is taken on this stat (listing goes through the fence);
            # a folder swapped for a symlink shows the link's own mtime, so it is listed, and
            # the listing finds it gone.
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if mtime_ns and st.st_mtime_ns == mtime_ns and phash == current_hash:
            same.append(path)
        else:
            to_list.append(path)
    return to_list, same


def is_folder(fence: Fence, target: str) -> bool:
    """Whether the path a scan was asked for is a folder (a folder gone since counts as one:
    its files are missing)."""
    try:
        return stat.S_ISDIR(fence.files.stat(target).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False
