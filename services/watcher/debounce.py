"""Coalesce bursts of file-system events per folder until the folder and its files settle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from shared.paths import Signature, signature

# What a touched file has before anyone looked at it: never equal to a real stat.
UNSEEN: Final[Signature] = (-1, -1)

# A file announced as being written (inotify IN_MODIFY without IN_CLOSE_WRITE yet), or found
# open for writing, holds its folder back at most this long after its last event or change: a
# writer that hangs, or a close event lost to a queue overflow, must not keep a folder pending
# forever.
OPEN_GRACE: Final = 30.0

# Touched files remembered per folder; beyond this the oldest are forgotten (they are the
# likeliest to be complete). Memory stays bounded when a burst brings a whole card of photos.
MAX_FILES_PER_DIR: Final = 10_000


@dataclass
class _File:
    sig: Signature | None
    writing: bool
    at: float  # when this file's state was last recorded


@dataclass
class _Pending:
    not_before: float
    files: dict[str, _File] = field(default_factory=dict)


class Debouncer:
    """Folders touched by events, each released once it and its touched files have settled.

    A folder is due when no event touched it for `quiet` seconds and every eligible file that
    was touched in it is stable: not announced as still being written, with the same size
    and mtime now as at its last event (or last check), at least `quiet` seconds earlier, and
    not open for writing by anyone (`busy`). A file that changed is re-checked `quiet` later;
    a file that is gone is settled (the scanner takes it offline). Not thread-safe: call it
    from one thread (the event loop).

    `busy` is what makes a copy that stalls with its file open safe whatever order the events
    came in: a file in a folder created (or moved in) just before it is announced by listing
    the folder, with no write in progress to say so, and its close may come much later.
    """

    def __init__(
        self,
        quiet: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        stat: Callable[[str], Signature | None] = signature,
        open_grace: float = OPEN_GRACE,
        max_files: int = MAX_FILES_PER_DIR,
        busy: Callable[[str], bool] = lambda _path: False,
    ) -> None:
        self.quiet = quiet
        self.busy = busy  # is the file open for writing? (the watcher sets it per library)
        self._clock = clock
        self._stat = stat
        self._open_grace = open_grace
        self._max_files = max_files
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, directory: object) -> bool:
        return directory in self._pending

    def touch(
        self,
        directory: str,
        file: str | None = None,
        sig: Signature | None = UNSEEN,
        writing: bool | None = None,
        now: float | None = None,
    ) -> None:
        """Record an event in `directory`, optionally about one eligible `file` in it.

        Args:
            sig: the file's signature when the event was seen (None: it is gone; UNSEEN: not
                looked at, so the first check only records it).
            writing: True while a writer has it open, False once closed or renamed into
                place, None to keep what an earlier event said.
        """
        now = self._clock() if now is None else now
        pending = self._pending.get(directory)
        if pending is None:
            pending = self._pending[directory] = _Pending(not_before=now + self.quiet)
        else:
            pending.not_before = max(pending.not_before, now + self.quiet)
        if file is None:
            return
        old = pending.files.pop(file, None)
        if writing is None:
            writing = old.writing if old is not None else False
        if sig is None:
            writing = False  # nobody writes to a file that is gone
        if len(pending.files) >= self._max_files:
            del pending.files[next(iter(pending.files))]
        pending.files[file] = _File(sig, writing, now)

    def due(self, now: float | None = None) -> list[str]:
        """Folders that have settled by `now`; they are forgotten as they are returned."""
        now = self._clock() if now is None else now
        ready: list[str] = []
        for directory, pending in self._pending.items():
            if now < pending.not_before:
                continue
            if self._settled(pending, now):
                ready.append(directory)
            else:
                pending.not_before = now + self.quiet
        for directory in ready:
            del self._pending[directory]
        return ready

    def _settled(self, pending: _Pending, now: float) -> bool:
        settled = True
        for path, f in pending.files.items():
            if f.writing and now - f.at < self._open_grace:
                settled = False  # its close event will touch the folder again
                continue
            current = self._stat(path)
            if current != f.sig:
                f.sig, f.writing, f.at = current, False, now
                settled = False
            elif current is not None and now - f.at < self._open_grace and self.busy(path):
                settled = False  # still open for writing: checked again `quiet` later
        return settled

    def clear(self) -> None:
        """Forget every pending folder."""
        self._pending.clear()
