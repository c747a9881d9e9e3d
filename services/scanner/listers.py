"""Listing helpers: processes that list a subtree task's folders beside the scanner (decision 0035).

A *modified* or *force* scan stats every file. One Python process lists and stats a file in
about the time the kernel takes for the stat alone, so a single-process scan of an unchanged
library cannot come near a plain walk; on a network drive every stat waits on the wire. The
scanner therefore forks helpers when it starts, before it loads NATS, PostgreSQL or any thread,
and lists each batch of folders in parts: one part here, one in each free helper, at once.

A helper knows nothing but a folder list, the fence and the import path. It runs the same
`walk_batch` as the scanner, so a folder listed there is the same listing (pickled, with every
stat taken while the folder was open). It exits when the scanner's end of its socket closes;
a helper that died is not replaced, and its parts are listed here. Forked early, a helper
shares the scanner's pages until either writes them: it costs a few MB of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import socket
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Final

from services.scanner.batch import Walked, walk_batch
from services.scanner.crawl import Fence
from shared.globs import ExclusionMatcher
from shared.metrics import HELPER_FOLDERS

log = logging.getLogger(__name__)

# The fewest folders a helper is sent: below it, a part costs more to hand over than to list.
MIN_PART: Final = 8
FENCES_KEPT: Final = 16  # libraries' fences a helper keeps built (a matcher compiles patterns)


def default_count() -> int:
    """One helper per core beyond the scanner's own, at most three."""
    return max(0, min(os.cpu_count() or 1, 4) - 1)


@dataclass
class _Helper:
    pid: int
    conn: Connection
    busy: bool = False
    dead: bool = False


_helpers: list[_Helper] = []


def start(count: int) -> None:
    """Fork `count` helpers. Called first in the scanner's main, while the process has no
    thread: a fork copies only the thread that calls it."""
    gc.collect()
    gc.freeze()  # the collector would otherwise write to every page the helpers share
    for _ in range(count):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the helper
            ours.close()
            for h in _helpers:  # its elder siblings' sockets are the scanner's, not its own
                h.conn.close()
            _helpers.clear()
            try:
                _serve(Connection(theirs.detach()))
            finally:
                os._exit(0)
        theirs.close()
        _helpers.append(_Helper(pid, Connection(ours.detach())))


def _serve(conn: Connection) -> None:
    """A helper's life: list what is asked until the scanner goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the scanner's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    fences: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Fence] = {}
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        key, folders, import_path = pickle.loads(request)
        try:
            fence = fences.get(key)
            if fence is None:
                if len(fences) >= FENCES_KEPT:
                    fences.clear()
                root, patterns, excluded_roots = key
                fence = fences[key] = Fence(root, ExclusionMatcher(patterns), excluded_roots)
            reply: tuple[bool, object] = (True, walk_batch(folders, fence, import_path))
        except Exception as e:  # listed again by the scanner, which reports it as it does
            reply = (False, repr(e))
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def _gone(helper: _Helper) -> None:
    helper.dead = True
    with contextlib.suppress(ChildProcessError):
        os.waitpid(helper.pid, os.WNOHANG)
    log.warning("listing helper %d is gone; the scanner lists its share itself", helper.pid)


def _send(helper: _Helper, request: bytes) -> bool:
    """Hand a request to a free helper (which is waiting for it: this does not block)."""
    try:
        helper.conn.send_bytes(request)
    except OSError:
        _gone(helper)
        return False
    helper.busy = True
    return True


def _reply(helper: _Helper) -> bytes | None:
    """Blocking: the helper's reply; None when it is gone."""
    try:
        return helper.conn.recv_bytes()
    except (EOFError, OSError):
        _gone(helper)
        return None
    finally:
        helper.busy = False


async def walk(folders: list[str], fence: Fence, import_path: str, *, inline: bool) -> list[Walked]:
    """`walk_batch` of `folders`, in parts: one in each free helper and one here (on the event
    loop when `inline`, else in a thread). The same list, in the same order."""
    free = [h for h in _helpers if not h.busy and not h.dead]
    parts = min(len(free) + 1, len(folders) // MIN_PART)
    if parts < 2:
        if inline:
            return walk_batch(folders, fence, import_path)
        return await asyncio.to_thread(walk_batch, folders, fence, import_path)
    size = -(-len(folders) // parts)
    chunks = [folders[i : i + size] for i in range(0, len(folders), size)]
    key = (fence.root, fence.matcher.patterns, fence.excluded_roots)
    sent: list[_Helper | None] = []
    for helper, chunk in zip(free, chunks[1:], strict=False):
        request = pickle.dumps((key, chunk, import_path), protocol=pickle.HIGHEST_PROTOCOL)
        sent.append(helper if _send(helper, request) else None)
    # The replies are read once this process's own part is listed, by the same thread: a
    # thread waiting for them would take the GIL back at every stat of the listing.
    if inline:
        own, replies = _own_then_replies(chunks[0], fence, import_path, sent)
    else:
        own, replies = await asyncio.to_thread(
            _own_then_replies, chunks[0], fence, import_path, sent
        )
    out = [own]
    for chunk, data in zip(chunks[1:], replies, strict=True):
        ok, walked = pickle.loads(data) if data is not None else (False, [])
        if ok:
            HELPER_FOLDERS.inc(len(walked))
        else:  # the helper is gone, or the listing failed there (reported as it fails here)
            walked = walk_batch(chunk, fence, import_path)
        out.append(walked)
    return _joined(out)


def _own_then_replies(
    own: list[str], fence: Fence, import_path: str, sent: list[_Helper | None]
) -> tuple[list[Walked], list[bytes | None]]:
    walked = walk_batch(own, fence, import_path)
    return walked, [None if h is None else _reply(h) for h in sent]


def _joined(parts: list[list[Walked]]) -> list[Walked]:
    """The parts in order; a part that lost its import path ends the batch there, as one
    walk_batch does."""
    out: list[Walked] = []
    for part in parts:
        out += part
        if part and part[-1].root_lost:
            break
    return out
