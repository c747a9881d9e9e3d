"""Listing one directory for a scan: streaming, fenced, never following a link out."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.fence import Escape
from shared.fence import Fence as FileFence
from shared.globs import ExclusionMatcher
from shared.media import asset_type, is_hidden, sidecar_candidates
from shared.paths import within

UPLOAD_FOLDER_SKIPPED = "inside the upload folder, which no external library may import; skipped"


class Entry(NamedTuple):
    """An eligible file found in a directory (its real path) — not yet stat'ed — and the mtime
    (ms) of its XMP sidecar, 0 without one. `st` is what resolving a symlink to it already
    said; a plain entry is stat'ed later, by name in its listed folder."""

    path: str
    type: str
    sidecar_ms: int = 0
    st: os.stat_result | None = None


class Seen(NamedTuple):
    """An eligible file with what stat said."""

    path: str
    type: str
    mtime_ms: int
    size: int
    sidecar_ms: int = 0


@dataclass
class Listing:
    """What one directory holds, as far as a library cares.

    `fd` is the listed folder, held open until `close()` so that its files are stat'ed in the
    very folder that was listed, by name, not through its path again.
    """

    files: list[Entry] = field(default_factory=list)
    subdirs: list[str] = field(default_factory=list)
    excluded: set[str] = field(default_factory=set)
    problems: list[tuple[str, str]] = field(default_factory=list)
    mtime_ns: int | None = None
    fd: int | None = None
    directory: str = ""

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def stat(self, entry: Entry) -> Seen | None:
        """mtime (ms) and size of an eligible file, None if it vanished since the listing."""
        st = entry.st
        if st is None:
            if self.fd is None:
                return None
            try:
                st = os.stat(entry.path.rpartition("/")[2], dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISREG(st.st_mode):
                return None  # replaced since the listing; the next scan sees what it is now
        mtime_ms = st.st_mtime_ns // 1_000_000
        return Seen(entry.path, entry.type, mtime_ms, st.st_size, entry.sidecar_ms)


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

    @property
    def files(self) -> FileFence:
        """Reads beneath the external path (shared/fence.py)."""
        return FileFence(self.root)

    def excludes(self, real: str) -> bool:
        """True when `real` is an excluded root or lies below one."""
        return any(within(x, real) for x in self.excluded_roots)


def _display(path: str) -> str:
    """A path for a message, even when its name is not valid UTF-8."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def list_dir(directory: str, fence: Fence, import_root: str | None = None) -> Listing:
    """List `directory` (a real path inside the fence) without reading any file.

    The folder is opened beneath the external path without following any symlink
    (shared/fence.py), so a folder swapped for a symlink is not listed. Hidden entries are
    skipped as Immich does; excluded paths are reported apart so their assets can go offline
    with the right reason; a symlink whose target leaves the fence, a symlink loop, and
    anything that is not a regular file or directory are reported as problems. A folder that
    an exclusion pattern names (`**/directoryA`), here or on the way down from `import_root`
    (the import path being crawled; the external path when not given), excludes every file
    beneath it, as Immich's crawler does. The caller closes the listing once its files are
    stat'ed.
    """
    files = fence.files
    opened = files.open_dir(directory)
    out = Listing(mtime_ns=opened.st.st_mtime_ns, fd=opened.fd, directory=directory)
    # The import path as the listed folder knows it (real); only compared, never opened.
    real_root = os.path.realpath(import_root) if import_root is not None else None
    root = real_root if real_root is not None and within(real_root, directory) else fence.root
    try:
        _list_into(out, directory, fence, fence.matcher.excludes_folder(directory, root))
    except BaseException:
        out.close()
        raise
    return out


def _list_into(out: Listing, directory: str, fence: Fence, folder_excluded: bool) -> None:
    assert out.fd is not None
    sidecars: dict[str, int] = {}
    prefix = directory.rstrip("/")
    with os.scandir(out.fd) as it:
        for entry in it:
            name = entry.name
            if is_hidden(name):
                continue
            path = f"{prefix}/{name}"
            if not _utf8(name):
                # PostgreSQL and JSON cannot hold it; skipped and reported, never crashed on.
                out.problems.append((_display(path), "name is not valid UTF-8; skipped"))
                continue
            st: os.stat_result | None = None
            try:
                if entry.is_symlink():
                    real, st = fence.files.resolve(path)
                    if stat.S_ISDIR(st.st_mode) and within(real, directory):
                        out.problems.append((_display(path), "symlink loop; skipped"))
                        continue
                    mode = st.st_mode
                else:
                    real = path
                    # The kind the listing itself gave (d_type): no stat for it. A file is
                    # stat'ed once, later, when its mtime and size are needed.
                    if entry.is_dir(follow_symlinks=False):
                        mode = stat.S_IFDIR
                    elif entry.is_file(follow_symlinks=False):
                        mode = stat.S_IFREG
                    else:
                        mode = entry.stat(follow_symlinks=False).st_mode
            except Escape:
                out.problems.append(
                    (_display(path), "symlink points outside the external path; skipped")
                )
                continue
            except FileNotFoundError:
                continue  # vanished while listing, or a dangling link: nothing to import
            except OSError as e:
                if e.errno == errno.ELOOP:
                    out.problems.append((_display(path), "symlink loop; skipped"))
                else:
                    out.problems.append((_display(path), f"cannot read: {e.strerror or e}"))
                continue
            # A plain file lies in the listed folder, which no excluded root holds (its task or
            # its parent's listing checked): only folders and links' targets are checked.
            if (st is not None or stat.S_ISDIR(mode)) and fence.excludes(real):
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
                        if st is None:
                            st = os.stat(name, dir_fd=out.fd, follow_symlinks=False)
                        sidecars[real] = st.st_mtime_ns // 1_000_000
                continue
            if not stat.S_ISREG(mode):
                out.problems.append((_display(path), "not a regular file; skipped"))
                continue
            if folder_excluded or (fence.matcher.patterns and fence.matcher.matches(real)):
                out.excluded.add(real)
                continue
            if st is not None and not _utf8(real):  # a link's target; a name was checked above
                out.problems.append((_display(path), "path is not valid UTF-8; skipped"))
                continue
            out.files.append(Entry(real, kind, st=st))
    if sidecars:
        out.files = [
            f._replace(
                sidecar_ms=next(
                    (sidecars[c] for c in sidecar_candidates(f.path) if c in sidecars), 0
                )
            )
            for f in out.files
        ]
