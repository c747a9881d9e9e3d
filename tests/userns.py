"""Run a command in a user namespace of its own with lower inotify limits (tests only).

`python -m tests.userns WATCHES INSTANCES -- command ...` (as root). The kernel counts inotify
watches and instances per user in each user namespace and checks every namespace's own limit
(`/proc/sys/user/max_inotify_watches`, `max_inotify_instances`), so lowering them inside a new
namespace limits the command alone, never the machine. Every uid and gid is mapped to itself, so
the command reads and writes files as it would outside (unshare(1)'s --map-root-user maps only
root, and `newuidmap`, which maps more, is not always installed; root can write the map itself).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWUSER = 0x10000000
WHOLE_RANGE = "0 0 4294967295\n"


def main(argv: list[str]) -> int:
    watches, instances, sep, *command = argv
    assert sep == "--" and command, "usage: tests.userns WATCHES INSTANCES -- command ..."
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWUSER) != 0:
            os.write(2, f"unshare: {os.strerror(ctypes.get_errno())}\n".encode())
            os._exit(126)
        os.write(ready_w, b"u")
        if os.read(mapped_r, 1) != b"m":
            os._exit(126)
        # Full capabilities inside the new namespace: its own sysctls are ours to set.
        with open("/proc/sys/user/max_inotify_watches", "w") as f:
            f.write(watches)
        with open("/proc/sys/user/max_inotify_instances", "w") as f:
            f.write(instances)
        os.execvp(command[0], command)
    os.read(ready_r, 1)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(WHOLE_RANGE)
    os.write(mapped_w, b"m")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: os.kill(pid, s))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
