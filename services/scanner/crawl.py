"""Listing one directory for a scan: streaming, fenced, never following a link out."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import stat
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from shared.fence import Escape
from shared.fence import Fence as FileFence
from shared.globs import ExclusionMatcher
from shared.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, asset_type, sidecar_candidates
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


# A file directly in the listed folder: its name, kind, mtime (ms) and size (-1 and 0 when it
# is not stat'ed yet). Two ints, not the stat itself: a batch holds thousands of them.
Plain = tuple[str, str, int, int]


@dataclass
class Listing:
    """What one directory holds, as far as a library cares.

    `fd` is the listed folder, held open until `close()` so that its files are stat'ed in the
    very folder that was listed, by name, not through its path again. The files directly in
    it are kept as plain tuples until `files` is asked for: an unchanged folder of a
    *modified* scan is compared by its `fingerprint` alone, with no object per file.
    """

    subdirs: list[str] = field(default_factory=list)
    excluded: set[str] = field(default_factory=set)
    problems: list[tuple[str, str]] = field(default_factory=list)
    mtime_ns: int | None = None
    fd: int | None = None
    directory: str = ""
    plain: list[Plain] = field(default_factory=list)
    linked: list[Entry] = field(default_factory=list)  # files reached through a symlink
    sidecars: dict[str, int] = field(default_factory=dict)  # an XMP's real path: its mtime (ms)
    unstated: bool = False  # a plain file's stat is missing or did not say "regular file"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __len__(self) -> int:
        """The eligible files listed."""
        return len(self.plain) + len(self.linked)

    @functools.cached_property
    def files(self) -> list[Entry]:
        """Each eligible file by its real path, with its sidecar's mtime."""
        prefix = self.directory.rstrip("/")
        files = [Entry(f"{prefix}/{name}", kind) for name, kind, _, _ in self.plain]
        files += self.linked
        if not self.sidecars:
            return files
        return [f._replace(sidecar_ms=self._sidecar_ms(f.path)) for f in files]

    def _sidecar_ms(self, path: str) -> int:
        sidecars = self.sidecars
        return next((sidecars[c] for c in sidecar_candidates(path) if c in sidecars), 0)

    def seen(self) -> list[Seen]:
        """Each file with the stat it had when listed (`stat_files`; see fingerprint)."""
        prefix = self.directory.rstrip("/")
        out = [Seen(f"{prefix}/{name}", kind, ms, size) for name, kind, ms, size in self.plain]
        if self.sidecars:
            out = [s._replace(sidecar_ms=self._sidecar_ms(s.path)) for s in out]
        linked = self.files[len(self.plain) :] if self.linked else []  # with their sidecars
        return out + [x for x in map(self.stat, linked) if x]

    def fingerprint(self) -> str | None:
        """What its files look like to a *modified* scan: the digest of `fingerprint_text`, as
        ScanRepository.fingerprints has PostgreSQL compute it over the known online assets (32
        characters a folder cross the wire, not a line per file). A folder whose fingerprint is
        its known assets' has nothing to reconcile. None when a file was not stat'ed while
        listed."""
        text = self.fingerprint_text()
        return None if text is None else fingerprint_digest(text)

    def fingerprint_text(self) -> str | None:
        """Path, mtime (ms) and sidecar mtime of each file, a line each, in code-point order
        (PostgreSQL's `COLLATE "C"` on UTF-8)."""
        if self.unstated or any(f.st is None for f in self.linked):
            return None
        if self.sidecars or self.linked:
            rows = [f"{s.path}|{s.mtime_ms}|{s.sidecar_ms}" for s in self.seen()]
        else:  # the common folder, without an object per file
            prefix = self.directory.rstrip("/")
            rows = [f"{prefix}/{n}|{ms}|0" for n, _, ms, _ in self.plain]
        rows.sort()
        return "\n".join(rows)

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


def fingerprint_digest(text: str) -> str:
    """PostgreSQL's md5() of a fingerprint's text (UTF-8; a name that is not valid UTF-8 never
    gets this far, and would only make the folder compared file by file)."""
    return hashlib.md5(text.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()


# A folder without known assets (PostgreSQL returns no row for it).
NO_FILES_FINGERPRINT: Final = fingerprint_digest("")


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


def list_dir(
    directory: str,
    fence: Fence,
    import_root: str | None = None,
    *,
    real_root: str | None = None,
    stat_files: bool = False,
) -> Listing:
    """List `directory` (a real path inside the fence) without reading any file.

    The folder is opened beneath the external path without following any symlink
    (shared/fence.py), so a folder swapped for a symlink is not listed. Hidden entries are
    skipped as Immich does; excluded paths are reported apart so their assets can go offline
    with the right reason; a symlink whose target leaves the fence, a symlink loop, and
    anything that is not a regular file or directory are reported as problems. A folder that
    an exclusion pattern names (`**/directoryA`), here or on the way down from `import_root`
    (the import path being crawled, or `real_root`, the same resolved already; the external
    path when neither is given), excludes every file beneath it, as Immich's crawler does.
    With `stat_files` (a scan that stats every file) each file is stat'ed while it is listed,
    by the listing's own entry. The caller closes the listing once its files are stat'ed.
    """
    files = fence.files
    opened = files.open_dir(directory)
    out = Listing(mtime_ns=opened.st.st_mtime_ns, fd=opened.fd, directory=directory)
    # The import path as the listed folder knows it (real); only compared, never opened.
    if real_root is None and import_root is not None:
        real_root = os.path.realpath(import_root)
    root = real_root if real_root is not None and within(real_root, directory) else fence.root
    try:
        folder_excluded = fence.matcher.excludes_folder(directory, root)
        _list_into(out, directory, fence, folder_excluded, stat_files)
    except BaseException:
        out.close()
        raise
    return out


# An asset's kind by its lowercase extension (shared.media.asset_type, without a call per file).
_KINDS: Final = {
    **dict.fromkeys(IMAGE_EXTENSIONS, "IMAGE"),
    **dict.fromkeys(VIDEO_EXTENSIONS, "VIDEO"),
}


def _list_into(
    out: Listing, directory: str, fence: Fence, folder_excluded: bool, stat_files: bool
) -> None:
    assert out.fd is not None
    sidecars = out.sidecars
    plain: list[Plain] = []
    prefix = directory.rstrip("/")
    with os.scandir(out.fd) as it:
        for entry in it:
            name = entry.name
            if name[:1] == ".":  # hidden (shared.media.is_hidden)
                continue
            if not name.isascii() and not _utf8(name):
                # PostgreSQL and JSON cannot hold it; skipped and reported, never crashed on.
                out.problems.append(
                    (_display(f"{prefix}/{name}"), "name is not valid UTF-8; skipped")
                )
                continue
            try:
                # The kind the listing itself gave (d_type): no stat for it. A plain regular
                # file (the most of any tree) is asked first; it is stat'ed once, here when
                # the scan stats every file, else when its mtime and size are needed.
                if entry.is_file(follow_symlinks=False):
                    dot = name.rfind(".")
                    kind = _KINDS.get(name[dot:].lower()) if dot > 0 else None
                    if kind is None:
                        if name[-4:].lower() == ".xmp":
                            with contextlib.suppress(OSError):
                                xmp = entry.stat(follow_symlinks=False)
                                sidecars[f"{prefix}/{name}"] = xmp.st_mtime_ns // 1_000_000
                    else:
                        st = None
                        if stat_files:
                            # try, not contextlib.suppress: a context manager a file cost a
                            # twentieth of a modified scan's listing.
                            try:  # noqa: SIM105
                                st = entry.stat(follow_symlinks=False)
                            except OSError:  # went: Listing.stat looks again
                                pass
                        if st is not None and stat.S_ISREG(st.st_mode):
                            plain.append((name, kind, st.st_mtime_ns // 1_000_000, st.st_size))
                        else:
                            out.unstated = True
                            plain.append((name, kind, -1, 0))
                    continue
                if entry.is_symlink():
                    _linked(out, f"{prefix}/{name}", directory, fence, folder_excluded, sidecars)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    path = f"{prefix}/{name}"
                    # A plain file lies in the listed folder, which no excluded root holds (its
                    # task or its parent's listing checked): only folders are checked.
                    if fence.excludes(path):
                        out.problems.append((_display(path), UPLOAD_FOLDER_SKIPPED))
                    else:
                        # Exclusions are decided per file: a pattern such as `**/Raw/*.tif` can
                        # drop some files of a folder and keep others.
                        out.subdirs.append(path)
                    continue
                # Neither a file, a link nor a folder (a pipe, a socket, a device).
                if asset_type(name) is not None:
                    out.problems.append(
                        (_display(f"{prefix}/{name}"), "not a regular file; skipped")
                    )
            except FileNotFoundError:
                continue  # vanished while listing, or a dangling link: nothing to import
            except OSError as e:
                _problem(out, f"{prefix}/{name}", e)
    if plain and (folder_excluded or fence.matcher.patterns):
        names = [p[0] for p in plain]
        excluded = set(names) if folder_excluded else set(fence.matcher.matching(prefix, names))
        if excluded:
            out.excluded.update(f"{prefix}/{name}" for name in excluded)
            plain = [p for p in plain if p[0] not in excluded]
    out.plain = plain


def _problem(out: Listing, path: str, e: OSError) -> None:
    if isinstance(e, Escape):
        out.problems.append((_display(path), "symlink points outside the external path; skipped"))
    elif e.errno == errno.ELOOP:
        out.problems.append((_display(path), "symlink loop; skipped"))
    else:
        out.problems.append((_display(path), f"cannot read: {e.strerror or e}"))


def _linked(
    out: Listing,
    path: str,
    directory: str,
    fence: Fence,
    folder_excluded: bool,
    sidecars: dict[str, int],
) -> None:
    """A symlink in the listing, followed while it stays inside the fence: a folder to list, a
    file known by its real path (the target's), a sidecar, or a problem. Raises OSError."""
    real, st = fence.files.resolve(path)
    mode = st.st_mode
    if stat.S_ISDIR(mode) and within(real, directory):
        out.problems.append((_display(path), "symlink loop; skipped"))
        return
    if fence.excludes(real):
        out.problems.append((_display(path), UPLOAD_FOLDER_SKIPPED))
        return
    if stat.S_ISDIR(mode):
        out.subdirs.append(real)
        return
    name = path.rpartition("/")[2]
    kind = asset_type(name)
    if kind is None:
        if name[-4:].lower() == ".xmp" and stat.S_ISREG(mode):
            sidecars[real] = st.st_mtime_ns // 1_000_000
        return
    if not stat.S_ISREG(mode):
        out.problems.append((_display(path), "not a regular file; skipped"))
    elif folder_excluded or (fence.matcher.patterns and fence.matcher.matches(real)):
        out.excluded.add(real)
    elif not _utf8(real):  # the target's path; the link's name was checked
        out.problems.append((_display(path), "path is not valid UTF-8; skipped"))
    else:
        out.linked.append(Entry(real, kind, st=st))
