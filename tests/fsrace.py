"""A hostile user's tool for tests: swap two names atomically, over and over, in a thread."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: str, b: str) -> None:
    """renameat2(RENAME_EXCHANGE): the two names trade places in one step."""
    if _LIBC.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


@contextlib.contextmanager
def swapping(a: str, b: str) -> Iterator[threading.Event]:
    """Swap `a` and `b` in a tight loop until the block ends; yields an event set once the
    loop has swapped at least once. The names are put back as they were afterwards."""
    stop = threading.Event()
    started = threading.Event()
    swaps = 0

    def loop() -> None:
        nonlocal swaps
        while not stop.is_set():
            exchange(a, b)
            swaps += 1
            started.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        if not started.wait(10):
            raise TimeoutError("the swapping thread never swapped")
        yield started
    finally:
        stop.set()
        thread.join(10)
        if swaps % 2:
            exchange(a, b)
