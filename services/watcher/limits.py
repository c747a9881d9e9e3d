"""inotify's per-user limits: reading them, and saying clearly what to do when one is reached."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Where the kernel keeps the limits: the system-wide knobs, and the current user namespace's
# own (a container may have lower ones; the lower of the two applies).
_SYSTEM: Final = Path("/proc/sys/fs/inotify")
_NAMESPACE: Final = Path("/proc/sys/user")

LIMIT_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EMFILE})
"""What inotify answers when a limit is reached: ENOSPC for watches, EMFILE for instances."""


def _read(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class InotifyLimits:
    """The limits that apply to this process (None: unknown, e.g. not Linux)."""

    watches: int | None
    instances: int | None
    system_watches: int | None = None  # fs.inotify.max_user_watches itself
    system_instances: int | None = None


def _lower(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def inotify_limits() -> InotifyLimits:
    """fs.inotify.max_user_watches / max_user_instances, or the user namespace's when lower."""
    sw = _read(_SYSTEM / "max_user_watches")
    si = _read(_SYSTEM / "max_user_instances")
    return InotifyLimits(
        watches=_lower(sw, _read(_NAMESPACE / "max_inotify_watches")),
        instances=_lower(si, _read(_NAMESPACE / "max_inotify_instances")),
        system_watches=sw,
        system_instances=si,
    )


def count_folders(roots: list[str]) -> int:
    """Folders under `roots`, themselves included: one inotify watch each (links not followed,
    as the watcher does not follow them). Blocking: run it in a thread."""
    total = 0
    for root in roots:
        for _dir, _subdirs, _files in os.walk(root, followlinks=False):
            total += 1
    return total


def suggested_watches(limit: int | None, folders: int) -> int:
    """A limit to suggest: room for these folders on top of what the user watches already
    (the whole current limit, since it was reached), as a power of two, at least 524,288."""
    wanted = (limit or 0) + folders
    return max(524_288, 1 << wanted.bit_length())


def suggested_instances(limit: int | None) -> int:
    return max(512, 2 * (limit or 0))


def limit_message(
    error: int, limits: InotifyLimits, folders: int, interval_ms: int, where: str | None = None
) -> str:
    """One message that says which limit was reached, how big the library is, how to raise
    the limit, and what the watcher does meanwhile (pure: the caller logs it).

    Args:
        error: ENOSPC (watches) or EMFILE (instances).
        where: the first folder that could not be watched, when known.
    """
    if error == errno.EMFILE:
        what = "inotify's instance limit is reached"
        knob, value, system = "max_user_instances", limits.instances, limits.system_instances
        fix = f"sudo sysctl fs.inotify.max_user_instances={suggested_instances(value)}"
    else:
        what = "inotify's watch limit is reached"
        knob, value, system = "max_user_watches", limits.watches, limits.system_watches
        fix = f"sudo sysctl fs.inotify.max_user_watches={suggested_watches(value, folders)}"
    shown = "unknown" if value is None else f"{value:,}"
    if value is not None and system is not None and system != value:
        shown = f"{knob} = {shown} in this user namespace (fs.inotify.{knob} = {system:,})"
    else:
        shown = f"fs.inotify.{knob} = {shown}"
    at = f" (first refused: {where})" if where else ""
    held = f"{folders:,} folder" + ("" if folders == 1 else "s")
    return (
        f"{what}{at}: {shown}; its import paths hold {held}, one watch each. "
        f"Watching it by polling every {interval_ms} ms (library.watch.interval) instead. "
        f"To use inotify, raise the limit, e.g. `{fix}` (add it to /etc/sysctl.d/ to keep "
        "it); the watcher tries inotify again once the limit has changed"
    )
