"""The metadata worker processes: one file at a time each, killed and replaced when one takes
longer than its time bound, and never outliving the service that started them."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PR_SET_PDEATHSIG: Final = 1
# Spawned, not forked: a forked worker would hold copies of the service's sockets (NATS,
# PostgreSQL) and of its siblings' pipes, and run with the service's signal handlers. A new
# worker takes about a second to import Pillow, libheif and FFmpeg; it is given no file before
# it has said it is ready, so that second never counts against a file's time bound. Started
# from the event loop's thread, since the parent-death signal follows the thread that started it.
_CONTEXT: Final = multiprocessing.get_context("spawn")
READY: Final = "ready"
RESPAWN_DELAY: Final = 5.0
"""Seconds before a worker that died while starting is replaced (not in a tight loop)."""


class WorkerTimeout(Exception):
    """A worker took longer than its time bound on one task; it was killed and replaced."""


class WorkerCrashed(Exception):
    """A worker died during a task (a crash in a decoder, the OOM killer); it was replaced."""


class PoolClosed(Exception):
    """The pool is stopping: the task was not (or not completely) run."""


def _die_with_parent(parent: int) -> None:
    """In a new worker: the kernel kills it when the service dies, however the service dies
    (SIGKILL included), and SIGTERM/SIGINT end it at once (Ctrl-C reaches the whole process
    group: no KeyboardInterrupt traceback from every worker). A worker of ProcessPoolExecutor
    kept the service's handlers, ignored SIGTERM and outlived it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the service died before prctl took effect
        os._exit(0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _serve(conn: Connection, parent: int, preload: tuple[str, ...]) -> None:
    """A worker's loop: run (function, args) messages one at a time until the pipe closes."""
    _die_with_parent(parent)
    for module in preload:
        importlib.import_module(module)
    conn.send(READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the service closed the pipe, or is gone
            return
        function, args = task
        try:
            reply: tuple[bool, Any] = (True, function(*args))
        except Exception as exc:  # sent back and raised in the service, as an executor does
            reply = (False, exc)
        try:
            conn.send(reply)
        except OSError:
            # The service died mid-task (its death signal is on its way): nothing to tell,
            # and no traceback in the service's log.
            os._exit(0)


class _Worker:
    def __init__(self, preload: tuple[str, ...]) -> None:
        self.conn, child = _CONTEXT.Pipe()
        self.process: BaseProcess = _CONTEXT.Process(
            target=_serve,
            args=(child, os.getpid(), preload),
            daemon=True,
            name="shoebox-metadata-worker",
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.conn.close()


class WorkerPool:
    """`size` worker processes; `run` hands one task to an idle one and awaits its answer.

    Create and use it in one event loop, on the thread that runs that loop. `preload` names
    modules each worker imports before it says it is ready.
    """

    def __init__(self, size: int, preload: tuple[str, ...] = ()) -> None:
        self.size = size
        self.preload = preload
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False
        self._closing = asyncio.Event()  # wakes the tasks waiting for a worker
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        worker = _Worker(self.preload)
        self._workers.add(worker)
        task = asyncio.get_running_loop().create_task(self._when_ready(worker))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _when_ready(self, worker: _Worker) -> None:
        try:
            await _readable(worker.conn)
            ready = await asyncio.to_thread(worker.conn.recv)
        except (EOFError, OSError):
            ready = None
        if self._closed:
            return
        if ready != READY:  # died while starting: a broken installation, not a file
            log.error(
                "metadata: a worker died while starting (exit code %s); another in %.0f s",
                worker.process.exitcode,
                RESPAWN_DELAY,
            )
            self._workers.discard(worker)
            worker.kill()
            asyncio.get_running_loop().call_later(RESPAWN_DELAY, self._respawn)
            return
        self._idle.put_nowait(worker)

    def _respawn(self) -> None:
        if not self._closed:
            self._spawn()

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.discard(worker)
        multiprocessing.active_children()  # reaps the ones that have exited
        if not self._closed:
            self._spawn()

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and metrics)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def run(self, timeout: float, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker process, which is killed after `timeout` seconds.

        Raises:
            WorkerTimeout: it took longer than `timeout`.
            WorkerCrashed: the worker died while it ran.
            PoolClosed: the pool is stopping.
            Exception: whatever `function` raised.
        """
        while True:
            if self._closed:
                raise PoolClosed("the metadata workers are stopping")
            worker = await self._next_idle()
            if worker.process.is_alive():
                break
            self._replace(worker)  # died while idle (the OOM killer, an admin)
        try:
            ok, value = await self._call(worker, timeout, function, args)
        except BaseException:
            # Timed out, died, or the awaiting task was cancelled: in every case the worker is
            # in an unknown state (a late answer would be taken for the next task's).
            self._replace(worker)
            raise
        self._idle.put_nowait(worker)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    async def _next_idle(self) -> _Worker:
        """The next idle worker; PoolClosed when the pool closes first (a folder's births wait
        for workers many at a time, and would otherwise wait through the service's stop)."""
        if not self._idle.empty():
            return self._idle.get_nowait()
        getter = asyncio.ensure_future(self._idle.get())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({getter, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not getter.done():
                getter.cancel()
            elif not getter.cancelled() and (self._closed or asyncio.current_task().cancelling()):  # type: ignore[union-attr]
                self._idle.put_nowait(getter.result())  # taken, but nobody will use it
        if self._closed:
            raise PoolClosed("the metadata workers are stopping")
        return getter.result()

    async def _call(
        self, worker: _Worker, timeout: float, function: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[bool, Any]:
        try:
            worker.conn.send((function, args))
            async with asyncio.timeout(timeout):
                await _readable(worker.conn)
            # Readable: the whole answer follows (a worker writes it in one go), or EOF.
            reply: tuple[bool, Any] = await asyncio.to_thread(worker.conn.recv)
        except TimeoutError:
            if self._closed:
                raise PoolClosed("the metadata workers are stopping") from None
            raise WorkerTimeout(f"took longer than {round(timeout, 1):g} s") from None
        except (EOFError, OSError):
            if self._closed:
                raise PoolClosed("the metadata workers are stopping") from None
            await asyncio.to_thread(worker.process.join, 1)
            raise WorkerCrashed(_how_it_died(worker.process.exitcode)) from None
        return reply

    async def close(self, grace: float = 2.0) -> None:
        """Stop every worker: SIGTERM, then SIGKILL for any still there after `grace` s."""
        self._closed = True
        self._closing.set()
        for task in list(self._starting):
            task.cancel()
        workers = list(self._workers)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.process.terminate()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for worker in workers:
            remaining = max(0.0, deadline - loop.time())
            await asyncio.to_thread(worker.process.join, remaining)
            if worker.process.exitcode is None:
                log.warning("metadata: worker %s ignored SIGTERM; killed", worker.process.pid)
                worker.process.kill()
                await asyncio.to_thread(worker.process.join, 5)
            worker.conn.close()
        self._workers.clear()


async def _readable(conn: Connection) -> None:
    """Until `conn` has something to read (or its other end is closed)."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    fd = conn.fileno()

    def _ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, _ready)
    try:
        await readable
    finally:
        loop.remove_reader(fd)


def _how_it_died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the reader died ({name})"
    return f"the reader died (exit code {exitcode})"
