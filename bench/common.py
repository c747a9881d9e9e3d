"""Shared bench plumbing: real NATS + PostgreSQL in a temp folder, an isolated system on them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tests.system import Infra, embedded_infra


def infra() -> contextlib.AbstractContextManager[Infra]:
    """The tests' embedded NATS + PostgreSQL, in a temp folder of the bench's own."""
    return embedded_infra(prefix="sbb-")


def own_mb(pid: int) -> float:
    """The process's own memory (USS: its private pages, not those it shares with its parent
    after a fork), from /proc."""
    own = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            own += int(line.split()[1])
    return own / 1024


def children_of(pid: int) -> list[int]:
    """The direct children of a process (a scanner's listing helpers)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class CpuTally:
    """CPU seconds the machine's processes spent between `start()` and `stop()`, by owner: a
    service (its process and every process below it, e.g. the metadata workers), PostgreSQL,
    the NATS server, everything else, and the cores' idle time. It says where the cores went
    during a phase, e.g. what a second scanner could have run on."""

    def __init__(self, services: dict[str, list[int]]) -> None:
        self.services = services  # name: root pids
        self.before: dict[int, tuple[str, float]] = {}
        self.idle_before = (0.0, 0.0)
        self.spent: dict[str, float] = {}

    @staticmethod
    def _procs() -> dict[int, tuple[int, str, float]]:
        """pid: (parent, name, CPU seconds) of every process."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    raw = Path(f"/proc/{entry.name}/stat").read_text()
                    name = raw[raw.index("(") + 1 : raw.rindex(")")]
                    fields = raw[raw.rindex(")") + 2 :].split()
                    cpu = (int(fields[11]) + int(fields[12])) / tick
                    if name == "postgres":
                        # A backend that exited (a connection closed) is counted in its parent,
                        # the postmaster, once reaped: PostgreSQL's share stays whole.
                        cpu += (int(fields[13]) + int(fields[14])) / tick
                    out[int(entry.name)] = (int(fields[1]), name, cpu)
        return out

    @staticmethod
    def _idle() -> tuple[float, float]:
        """The cores' idle (and I/O wait) time, and the time the hypervisor gave to others."""
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[4]) + int(fields[5])) / tick, int(fields[8]) / tick

    def _owned(self) -> dict[int, tuple[str, float]]:
        procs = self._procs()
        owner = {pid: name for name, pids in self.services.items() for pid in pids}
        out = {}
        for pid, (parent, name, cpu) in procs.items():
            # The servers by name first: the bench itself starts the NATS server.
            who = name if name in ("postgres", "nats-server") else owner.get(pid)
            up = parent
            while who is None and up in procs and up > 1:
                who, up = owner.get(up), procs[up][0]
            out[pid] = (who or "other", cpu)
        return out

    def start(self) -> None:
        self.before, self.idle_before = self._owned(), self._idle()

    def stop(self) -> dict[str, float]:
        after, idle = self._owned(), self._idle()
        spent: dict[str, float] = {}
        for pid, (who, cpu) in after.items():
            spent[who] = spent.get(who, 0.0) + cpu - self.before.get(pid, (who, 0.0))[1]
        spent["idle"] = idle[0] - self.idle_before[0]
        spent["stolen by the hypervisor"] = idle[1] - self.idle_before[1]
        self.spent = {k: v for k, v in spent.items() if v >= 0.05}
        return self.spent

    def line(self, wall: float) -> str:
        """`name 12.3 s (0.45 cores)` for each, most first."""
        return ", ".join(
            f"{who} {cpu:.1f} s ({cpu / wall:.2f} cores)"
            for who, cpu in sorted(self.spent.items(), key=lambda x: -x[1])
        )
