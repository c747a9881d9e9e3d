"""Path confinement (the fence around a user's external path) and Immich's import-path checks."""

from __future__ import annotations

import os
import stat
from typing import Final

from shared.errors import PathOutsideAllowedRoot

# Linux limits: PATH_MAX counts the terminating NUL, NAME_MAX is per component, both in bytes.
MAX_PATH_BYTES: Final = 4096
MAX_COMPONENT_BYTES: Final = 255

# Every check below works on `os.path.realpath`, which resolves `.`, `..`, repeated slashes and
# symlinks in the order the kernel would (so `link/..` is the parent of the link's target, which
# `os.path.normpath` would get wrong). It is a check at one instant: a symlink created later can
# still point outside, so whoever opens files must check again (the crawler does, per link).


class _Unresolvable(Exception):
    """A path that cannot be made real: a symlink loop, a NUL byte, an unencodable name."""


def _real(path: str) -> str:
    """`os.path.realpath`, but raising _Unresolvable where it would silently give up."""
    try:
        real = os.path.realpath(path)
    except ValueError as exc:  # embedded NUL, or a str that is not a file-system name
        raise _Unresolvable(str(exc)) from exc
    # On a symlink loop realpath returns the rest of the path unresolved, so either a `..` is
    # left over or a component of the existing prefix is still a symlink.
    if os.path.normpath(real) != real or _has_symlink(real):
        raise _Unresolvable("Too many levels of symbolic links")
    return real


def _has_symlink(real: str) -> bool:
    """True when a component of the existing prefix of an absolute path is a symlink."""
    current = ""
    for part in real.split("/")[1:]:
        current = f"{current}/{part}"
        if os.path.islink(current):
            return True
        if not os.path.lexists(current):
            # Nothing below a missing (or unreadable) component exists for us either.
            return False
    return False


def _contains(root_real: str, real: str) -> bool:
    """Component-wise containment of two real (normalised, absolute) paths."""
    if real == root_real:
        return True
    prefix = root_real if root_real.endswith("/") else root_real + "/"
    return real.startswith(prefix)


def is_inside(root: str, path: str) -> bool:
    """True when `path`, made real, is `root` (made real) or lies below it.

    Compares whole components, so `/mnt/media2` is not inside `/mnt/media`. A path that cannot
    be resolved (symlink loop, NUL byte) is never inside.
    """
    try:
        return _contains(_real(root), _real(path))
    except _Unresolvable:
        return False


def resolve_inside(root: str, path: str) -> str:
    """Return the real path of `path`, or raise PathOutsideAllowedRoot if it escapes `root`."""
    try:
        root_real = _real(root)
        real = _real(path)
    except _Unresolvable as exc:
        raise PathOutsideAllowedRoot(f"Path {path} cannot be resolved: {exc}") from exc
    if not _contains(root_real, real):
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


def _check_shape(
    path: str, external_path: str | None, upload_root: str | None
) -> tuple[str | None, str]:
    """The checks of check_import_path_shape; also returns the real path when they pass."""
    error = _hygiene(path, "Import path")
    if error is not None:
        return error, ""
    if upload_root is not None and is_inside(upload_root, path):
        return "Cannot use media upload folder for external libraries", ""
    if not os.path.isabs(path):
        return f"Import path must be absolute, try {os.path.abspath(path)}", ""
    if external_path is None:
        return (
            "No external path is set for this user; "
            "an admin must set one before external libraries can be used"
        ), ""
    outside = f"Import path is outside the user's external path {external_path}"
    try:
        fence = _real(external_path)
    except _Unresolvable:
        return outside, ""
    try:
        real = _real(path)
    except _Unresolvable as exc:
        # Say "cannot be resolved" only for a path that is inside the fence as far as it
        # resolves, so that the message tells nothing about the file system outside the fence.
        inside = _contains(fence, os.path.realpath(path))
        return (f"Import path cannot be resolved: {exc}" if inside else outside), ""
    if not _contains(fence, real):
        return outside, ""
    return None, real


def check_import_path_shape(
    path: str, external_path: str | None, upload_root: str | None = None
) -> str | None:
    """Validate an import path without requiring it to exist (Immich accepts that at create).

    Runs the input checks, the upload-folder check, the absolute check and the fence; the fence
    still resolves the symlinks of whatever prefix of the path exists. Returns the message of
    the first failed check, or None.
    """
    return _check_shape(path, external_path, upload_root)[0]


def validate_import_path(
    path: str, external_path: str | None, upload_root: str | None = None
) -> str | None:
    """Validate an import path as Immich's validate endpoint does; None when it is usable.

    The fence comes before the checks on disk, so nothing outside the user's external path is
    probed for existence.
    """
    error, real = _check_shape(path, external_path, upload_root)
    if error is not None:
        return error
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return "Path does not exist (ENOENT)"
    except OSError as exc:
        return str(exc)
    if not stat.S_ISDIR(st.st_mode):
        return "Not a directory"
    if not os.access(real, os.R_OK | os.X_OK):
        return "Lacking read permission for folder"
    return None


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
