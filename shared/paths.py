"""Path confinement (the fence around a user's external path) and Immich's import-path checks."""

from __future__ import annotations

import os
import stat
from typing import Final

from shared.errors import PathOutsideAllowedRoot
from shared.importpath import PathProblem, Unusable, describe

Signature = tuple[int, int]
"""A file's (size in bytes, mtime in ns): what changes when anyone writes to it."""


def signature(path: str) -> Signature | None:
    """Size and mtime of `path` itself (a symlink is not followed); None when it is not there."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return stat_signature(st)


def stat_signature(st: os.stat_result) -> Signature:
    """The signature in a stat result (of an open descriptor, say)."""
    return (st.st_size, st.st_mtime_ns)


# Linux limits: PATH_MAX counts the terminating NUL, NAME_MAX is per component, both in bytes.
MAX_PATH_BYTES: Final = 4096
MAX_COMPONENT_BYTES: Final = 255

# Linux gives up after following this many symlinks in one lookup (MAXSYMLINKS), with ELOOP.
MAX_SYMLINKS: Final = 40

# What one API request may spend resolving paths, in units of about 65 ns: each lstat costs the
# components the kernel walks for it (n for an n-component path) plus LOOKUP_COST for the call.
# 40 symlinks of 4,000 bytes make one path cost about 10 million (0.6 s; 128 of them blocked
# the API for 35 s); 128 ordinary paths cost about 100,000. So at most about 0.3 s of work.
MAX_LOOKUP_WORK: Final = 5_000_000
LOOKUP_COST: Final = 40
OVER_BUDGET: Final = (
    "Not checked: the import paths of this request need too many file system lookups "
    "(symbolic links or deep folders); send fewer at a time"
)

# Every check below compares real paths: `.`, `..`, repeated slashes and symlinks resolved in
# the order the kernel resolves them (so `link/..` is the parent of the link's target, which
# `os.path.normpath` gets wrong). We resolve ourselves rather than call `os.path.realpath`
# because on a symlink loop realpath silently returns a half-resolved path, which it then
# normalises lexically. It is a check at one instant: a symlink created later can still point
# outside, so whoever opens files must check again (the crawler does, per link).


class _Unresolvable(Exception):
    """A path that cannot be made real: a symlink loop, a NUL byte, an unencodable name."""

    def __init__(self, reason: str, partial: str = "") -> None:
        super().__init__(reason)
        self.partial = partial  # how far resolution got before giving up


class LookupBudget:
    """The file-system work left to one caller (an API request) for resolving paths.

    Once spent, every resolution that needs a lookup fails, and the checks below answer
    OVER_BUDGET: a bound per request, however many paths and symlinks it sends.
    """

    __slots__ = ("left",)

    def __init__(self, work: int = MAX_LOOKUP_WORK) -> None:
        self.left = work

    @property
    def spent(self) -> bool:
        return self.left < 0

    def charge(self, path: str) -> None:
        self.left -= path.count("/") + LOOKUP_COST
        if self.left < 0:
            raise _Unresolvable(OVER_BUDGET)


def _real(path: str, budget: LookupBudget | None = None) -> str:
    """The real absolute path, like `os.path.realpath`; raises _Unresolvable on a loop.

    Components that do not exist (or cannot be looked at) are taken as they are, so a path
    that does not exist yet still resolves through its existing prefix.
    """
    if "\x00" in path:
        raise _Unresolvable("embedded NUL byte")
    if not path.startswith("/"):
        try:
            path = f"{os.getcwd()}/{path}"
        except OSError as exc:  # the working directory was deleted
            raise _Unresolvable(str(exc)) from exc
    pending = path.split("/")[::-1]  # a stack: next component last
    resolved = ""  # "" is the root; otherwise "/a/b" with no trailing slash
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            resolved = resolved.rsplit("/", 1)[0]
            continue
        candidate = f"{resolved}/{name}"
        if budget is not None:
            budget.charge(candidate)
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            target = os.readlink(candidate) if is_link else ""
        except OSError:  # missing, not a directory, no permission: keep the name as it is
            is_link = False
        except ValueError as exc:  # a str that is not a file-system name
            raise _Unresolvable(str(exc)) from exc
        if not is_link:
            resolved = candidate
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise _Unresolvable("Too many levels of symbolic links", resolved or "/")
        if target.startswith("/"):
            resolved = ""
        pending.extend(target.split("/")[::-1])
    return resolved or "/"


def within(root_real: str, real: str) -> bool:
    """Component-wise containment of two paths that are already real (normalised, absolute):
    no file system access. `/mnt/media2` is not within `/mnt/media`."""
    if real == root_real:
        return True
    prefix = root_real if root_real.endswith("/") else root_real + "/"
    return real.startswith(prefix)


def is_inside(root: str, path: str, budget: LookupBudget | None = None) -> bool:
    """True when `path`, made real, is `root` (made real) or lies below it.

    Compares whole components, so `/mnt/media2` is not inside `/mnt/media`. A path that cannot
    be resolved (symlink loop, NUL byte, budget spent) is never inside.
    """
    try:
        return within(_real(root, budget), _real(path, budget))
    except _Unresolvable:
        return False


def resolve_inside(root: str, path: str) -> str:
    """Return the real path of `path`, or raise PathOutsideAllowedRoot if it escapes `root`.

    A check by name, for answering a request: never open what it returns (a name can be
    swapped after the check); files are read through shared/fence.py."""
    try:
        root_real = _real(root)
        real = _real(path)
    except _Unresolvable as exc:
        raise PathOutsideAllowedRoot(f"Path {path} cannot be resolved: {exc}") from exc
    if not within(root_real, real):
        raise PathOutsideAllowedRoot(f"Path {path} is outside {root}")
    return real


def _hygiene(path: str, label: str) -> str | None:
    """Input checks shared by import paths and external paths; no file system access."""
    if not path or path.isspace():
        return f"{label} must not be empty"
    if "\x00" in path:
        return f"{label} must not contain a NUL byte"
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:
        return f"{label} contains characters that cannot be used in a file name"
    if len(encoded) >= MAX_PATH_BYTES:
        return f"{label} must be shorter than {MAX_PATH_BYTES} bytes"
    if any(len(part) > MAX_COMPONENT_BYTES for part in encoded.split(b"/")):
        return f"Each part of the {label.lower()} must be at most {MAX_COMPONENT_BYTES} bytes"
    if "\\" in path:
        return f"{label} must be an absolute POSIX path"
    return None


def check_import_path_shape(
    path: str,
    external_path: str | None,
    upload_root: str | None = None,
    *,
    budget: LookupBudget | None = None,
) -> str | None:
    """Validate an import path without requiring it to exist (Immich accepts that at create).

    Runs the input checks, the upload-folder check, the absolute check and the fence; the fence
    still resolves the symlinks of whatever prefix of the path exists. Returns the message of
    the first failed check, or None; OVER_BUDGET once `budget` is spent.
    """
    problem = _shape(path, external_path, upload_root, budget)
    return None if problem is None else describe(problem)


def _shape(
    path: str, external_path: str | None, upload_root: str | None, budget: LookupBudget | None
) -> PathProblem | None:
    """Why an import path is unusable whatever the disk holds (see check_import_path_shape)."""
    problem = _shape_checks(path, external_path, upload_root, budget)
    if budget is not None and budget.spent:
        return PathProblem(reason=Unusable.OVER_BUDGET, detail=OVER_BUDGET)
    return problem


def _shape_checks(
    path: str, external_path: str | None, upload_root: str | None, budget: LookupBudget | None
) -> PathProblem | None:
    error = _hygiene(path, "Import path")
    if error is not None:
        return PathProblem(reason=Unusable.INVALID, detail=error)
    if upload_root is not None and is_inside(upload_root, path, budget):
        return PathProblem(reason=Unusable.UPLOAD_FOLDER)
    if not os.path.isabs(path):
        return PathProblem(
            reason=Unusable.INVALID,
            detail=f"Import path must be absolute, try {os.path.abspath(path)}",
        )
    if external_path is None:
        return PathProblem(reason=Unusable.NO_EXTERNAL_PATH)
    outside = PathProblem(reason=Unusable.OUTSIDE_EXTERNAL_PATH, external_path=external_path)
    try:
        fence = _real(external_path, budget)
    except _Unresolvable:
        return outside
    try:
        real = _real(path, budget)
    except _Unresolvable as exc:
        # Say "cannot be resolved" only when resolution gave up inside the fence, so that the
        # message tells nothing about the file system outside it.
        if within(fence, exc.partial):
            return PathProblem(reason=Unusable.UNRESOLVABLE, detail=str(exc))
        return outside
    if not within(fence, real):
        return outside
    return None


def import_path_problem(
    path: str,
    external_path: str | None,
    upload_root: str | None = None,
    *,
    budget: LookupBudget | None = None,
) -> PathProblem | None:
    """Why an import path cannot be used now, or None when it is usable.

    The fence comes before the checks on disk, so nothing outside the user's external path is
    probed for existence.
    """
    problem = _shape(path, external_path, upload_root, budget)
    if problem is not None:
        return problem
    # Ask the kernel about the path as given: the fence resolves missing components by name
    # (`/ext/missing/..` is `/ext` to it, as to realpath); the kernel refuses them.
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return PathProblem(reason=Unusable.DANGLING_SYMLINK)
        return PathProblem(reason=Unusable.MISSING)
    except OSError as exc:
        return PathProblem(reason=Unusable.UNREADABLE, detail=str(exc))
    if not stat.S_ISDIR(st.st_mode):
        return PathProblem(reason=Unusable.NOT_A_DIRECTORY)
    if not os.access(path, os.R_OK | os.X_OK):
        return PathProblem(reason=Unusable.UNREADABLE)
    return None


def validate_import_path(
    path: str,
    external_path: str | None,
    upload_root: str | None = None,
    *,
    budget: LookupBudget | None = None,
) -> str | None:
    """Validate an import path as Immich's validate endpoint does: its message, None if usable."""
    problem = import_path_problem(path, external_path, upload_root, budget=budget)
    return None if problem is None else describe(problem)


def strip_trailing_slash(path: str) -> str:
    """`/photos/` as `/photos` (Immich accepts either); the root and relative paths unchanged."""
    if path.startswith("/") and path.endswith("/") and path.strip("/"):
        return path.rstrip("/")
    return path


def validate_external_path(path: str) -> str | None:
    """Validate the external path an admin sets for a user; None when it is acceptable.

    It must be absolute and already normalised (no `.`, `..`, repeated or trailing slash), so
    that what is stored is what is compared. It is not required to exist.
    """
    error = _hygiene(path, "External path")
    if error is not None:
        return error
    if not os.path.isabs(path):
        return "External path must be absolute"
    normal = os.path.normpath(path)
    if normal.startswith("//"):
        # POSIX keeps a leading `//`; nothing here needs it.
        normal = "/" + normal.lstrip("/")
    if normal != path:
        return f"External path must be normalised, try {normal}"
    return None


def validate_scan_path(
    path: str,
    import_paths: list[str] | tuple[str, ...],
    external_path: str | None,
    upload_root: str | None = None,
    budget: LookupBudget | None = None,
) -> str | None:
    """Validate the folder or file a scan of part of a library is asked for; None when usable.

    It must pass the checks of an import path (fence included) except that it may be a file,
    and lie, once real, within one of the library's import paths (also made real).
    """
    error = check_import_path_shape(path, external_path, upload_root, budget=budget)
    if error is not None:
        return error.replace("Import path", "Path")
    try:
        real = _real(path, budget)
        inside = any(within(_real(p, budget), real) for p in import_paths)
    except _Unresolvable as exc:
        return f"Path cannot be resolved: {exc}"
    if not inside:
        return "Path is not inside any of the library's import paths"
    try:
        os.stat(path)
    except FileNotFoundError:
        return "Path does not exist (ENOENT)"
    except OSError as exc:
        return str(exc)
    return None
