"""Why an import path cannot be used: a structured reason, and the one place its words are made."""

from __future__ import annotations

import enum

import msgspec


class Unusable(enum.StrEnum):
    """Why an import path cannot be scanned, watched or accepted."""

    INVALID = "invalid"  # its text: empty, NUL byte, too long, not absolute (detail says which)
    OVER_BUDGET = "over-budget"  # the request's lookups were spent before it was checked
    UPLOAD_FOLDER = "upload-folder"
    NO_EXTERNAL_PATH = "no-external-path"
    OUTSIDE_EXTERNAL_PATH = "outside-external-path"
    UNRESOLVABLE = "unresolvable"  # a symlink loop inside the external path
    MISSING = "missing"
    DANGLING_SYMLINK = "dangling-symlink"  # a link (an automounter's, say) whose target is gone
    NOT_A_DIRECTORY = "not-a-directory"
    UNREADABLE = "unreadable"  # no permission, or an I/O error (detail: the system's words)
    EMPTY_BUT_HELD_FILES = "empty-but-held-files"  # a mount point left behind by a drive
    UNMOUNTED = "unmounted"  # it had a device of its own and now sits on its parent's


FENCED_OUT = frozenset(
    {Unusable.NO_EXTERNAL_PATH, Unusable.OUTSIDE_EXTERNAL_PATH, Unusable.OVER_BUDGET}
)
"""Reasons that say the library may not read there, rather than that the path is not there."""

DRIVE_GONE = frozenset({Unusable.EMPTY_BUT_HELD_FILES, Unusable.UNMOUNTED})
"""Reasons that come from comparing the path with what the last scan saw there."""


class PathProblem(msgspec.Struct, frozen=True, kw_only=True):
    """An import path that cannot be used, and why."""

    reason: Unusable
    detail: str = ""  # the input check's or the operating system's own words, where they help
    external_path: str = ""  # the fence it falls outside of
    held: int = 0  # online assets the last scan found below it


_MOUNT_HINT = "Is the drive mounted? Its assets stay, offline, until it is back"


def describe(problem: PathProblem) -> str:
    """The words people see (Immich's for the validate route): made here and nowhere else."""
    match problem.reason:
        case Unusable.INVALID | Unusable.OVER_BUDGET:
            return problem.detail
        case Unusable.UPLOAD_FOLDER:
            return "Cannot use media upload folder for external libraries"
        case Unusable.NO_EXTERNAL_PATH:
            return (
                "No external path is set for this user; "
                "an admin must set one before external libraries can be used"
            )
        case Unusable.OUTSIDE_EXTERNAL_PATH:
            return f"Import path is outside the user's external path {problem.external_path}"
        case Unusable.UNRESOLVABLE:
            return f"Import path cannot be resolved: {problem.detail}"
        case Unusable.MISSING | Unusable.DANGLING_SYMLINK:
            return "Path does not exist (ENOENT)"  # Immich's words for both
        case Unusable.NOT_A_DIRECTORY:
            return "Not a directory"
        case Unusable.UNREADABLE:
            return problem.detail or "Lacking read permission for folder"
        case Unusable.EMPTY_BUT_HELD_FILES:
            return f"it is empty; it held {problem.held:,} files at the last scan"
        case Unusable.UNMOUNTED:
            return "it is no longer a mount point (its files were on another device)"


def scan_message(path: str, problem: PathProblem) -> str:
    """The scan problem recorded for an unusable import path (`ScanProblemFound.message`)."""
    words = describe(problem)
    if problem.reason is Unusable.DANGLING_SYMLINK:
        words += ": it is a symbolic link whose target is gone"
    if problem.reason in DRIVE_GONE:
        return f"import path unavailable: {path}: {words}. {_MOUNT_HINT}"
    if problem.held and problem.reason not in FENCED_OUT:
        words += f"; it held {problem.held:,} files at the last scan. {_MOUNT_HINT}"
    return f"import path unavailable: {words}"
