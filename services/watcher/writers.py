"""Is a file open for writing by anyone? The kernel's answer, through a read lease."""

from __future__ import annotations

import contextlib
import fcntl
import signal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from shared.fence import Fence

F_SETLEASE: Final = getattr(fcntl, "F_SETLEASE", 1024)
F_SETSIG: Final = getattr(fcntl, "F_SETSIG", 10)

# Should a writer open the file in the instant we hold the lease, the kernel tells the holder
# with a signal (SIGIO by default, which would end the process); this one is ignored unless
# handled, and the lease is given back at once anyway.
_BREAK_SIGNAL: Final = signal.SIGWINCH


def being_written(fence: Fence, path: str) -> bool:
    """True when some process holds `path` open for writing (a copy still in progress).

    A read lease is granted only on a file nobody has open for writing (fcntl(2),
    F_SETLEASE); it is taken and given back at once, and nothing is read. False when nobody
    writes it, and also when this cannot be told: not the file's owner and without
    CAP_LEASE, a file system without leases (network shares), a path that is gone or is not
    a regular file beneath the fence.
    """
    try:
        opened = fence.open_file(path)
    except OSError:
        return False
    with opened:
        try:
            fcntl.fcntl(opened.fd, F_SETSIG, _BREAK_SIGNAL)
            fcntl.fcntl(opened.fd, F_SETLEASE, fcntl.F_RDLCK)
        except BlockingIOError:
            return True  # EAGAIN: open for writing somewhere
        except OSError:
            return False  # EACCES, EINVAL: leases say nothing here
        with contextlib.suppress(OSError):
            fcntl.fcntl(opened.fd, F_SETLEASE, fcntl.F_UNLCK)
    return False
