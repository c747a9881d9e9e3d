"""Shared bench plumbing: real NATS + PostgreSQL in a temp folder, an isolated system on them."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.system import Infra, embedded_infra


def infra() -> contextlib.AbstractContextManager[Infra]:
    """The tests' embedded NATS + PostgreSQL, in a temp folder of the bench's own."""
    return embedded_infra(prefix="sbb-")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
