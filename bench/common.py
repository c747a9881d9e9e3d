"""Shared bench plumbing: real NATS + PostgreSQL in a temp folder, an isolated system on them."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.infra import free_port, start_nats, start_postgres
from tests.system import Infra


@contextlib.contextmanager
def infra() -> Iterator[Infra]:
    root = Path(tempfile.mkdtemp(prefix="sbb-", dir="/tmp"))
    port = free_port()
    nats = start_nats(root / "nats", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server, uri = start_postgres(root / "pg", cleanup_mode="stop")
    try:
        yield Infra(nats_url=f"nats://127.0.0.1:{port}", pg_uri=uri, root=root)
    finally:
        nats.terminate()
        nats.wait(10)
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
