"""inotify's limits reached: the watcher says so once and polls the library instead.

The limits are per user, so a test must not lower the machine's (other processes share it).
The watcher runs as a real process (`python -m services.watcher`) in a user namespace of its
own (tests/userns.py), whose `/proc/sys/user/max_inotify_watches` and `max_inotify_instances`
are lowered for that namespace alone: the kernel counts inotify watches per user per namespace
and refuses one with ENOSPC (an instance with EMFILE) as it would on a machine whose
`fs.inotify.max_user_watches` is too low for a big library. Nothing is faked: the kernel
refuses, watchdog goes on without the folder, and the watcher must notice.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.factories import make_tree
from tests.integration.test_watcher import POLL_MS, WatchWorld, open_world
from tests.system import Infra, env_for, eventually


def _namespaced(watches: int, instances: int, *command: str) -> list[str]:
    return [sys.executable, "-m", "tests.userns", str(watches), str(instances), "--", *command]


def _namespaces_work() -> bool:
    """Can this machine give a process a user namespace with its own inotify limits?"""
    if os.geteuid() != 0 or not os.path.exists("/proc/sys/user/max_inotify_watches"):
        return False
    try:
        done = subprocess.run(_namespaced(5, 5, "true"), capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_work(), reason="needs root and user namespaces with their own inotify limits"
)


class LimitedWatcher:
    """`python -m services.watcher` in a user namespace with low inotify limits; its log."""

    def __init__(self, world: WatchWorld, log: Path, *, watches: int, instances: int) -> None:
        env = {
            **os.environ,
            **env_for(world.system.settings),
            "SHOEBOX_LIBRARY_WATCH_ENABLED": "true",
            "SHOEBOX_LIBRARY_WATCH_INTERVAL": str(POLL_MS),
            "SHOEBOX_LOG_LEVEL": "INFO",
        }
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            _namespaced(watches, instances, sys.executable, "-m", "services.watcher"),
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def lines(self, *needles: str) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if all(n in line for n in needles)]

    async def logged(self, *needles: str, what: str) -> None:
        async def found() -> bool:
            assert self.process.poll() is None, self.log.read_text()
            return bool(self.lines(*needles))

        await eventually(found, 20, what)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._out.close()


@contextlib.asynccontextmanager
async def limited_watcher(
    world: WatchWorld, tmp_path: Path, *, watches: int = 10_000, instances: int = 128
) -> AsyncIterator[LimitedWatcher]:
    watcher = LimitedWatcher(world, tmp_path / "watcher.log", watches=watches, instances=instances)
    try:
        yield watcher
    finally:
        watcher.stop()


async def imported(world: WatchWorld, library_id: str, path: Path, what: str) -> None:
    async def found() -> bool:
        return await world.asset(library_id, path) is not None

    await eventually(found, 20, what)


class TestInotifyLimits:
    @pytest.mark.parametrize("limit", ["watches", "instances"])
    async def test_library_beyond_the_limit_is_polled_and_said_once(
        self, infra: Infra, tmp_path: Path, limit: str
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            root = world.media / "big"
            make_tree(root, {f"f{i:02d}/old.jpg": None for i in range(30)})
            lib = await world.library(root)
            kw = {"watches": 10} if limit == "watches" else {"instances": 0}
            async with limited_watcher(world, tmp_path, **kw) as watcher:
                what = "watch limit" if limit == "watches" else "instance limit"
                await watcher.logged(lib, what, what=f"the {what} to be reported")
                await world.caught_up(lib)
                # Deep in the library, where inotify got no watch: only polling sees it.
                new = make_tree(root, {"f29/new.jpg": None})["f29/new.jpg"]
                await imported(world, lib, new, "a file written after the fallback")

                # Another library makes the watcher read every library again; the first one
                # stays on polling and is not reported again.
                other = await world.library(world.media / "small")
                small = make_tree(world.media / "small", {"s.jpg": None})["s.jpg"]
                await imported(world, other, small, "a file of the second library")
                await watcher.logged(other, "watching", what="the second library watched")

            (message,) = watcher.lines(lib, what)
            assert "31 folders" in message, message
            assert f"polling every {POLL_MS} ms" in message, message
            knob = "max_user_watches" if limit == "watches" else "max_user_instances"
            assert f"`sudo sysctl fs.inotify.{knob}=" in message, message
            assert watcher.lines(lib, f"watching {os.path.realpath(root)} with polling")

    async def test_folders_beyond_the_limit_later_switch_the_library_to_polling(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            root = world.media / "lib"
            make_tree(root, {"a/old.jpg": None, "b/old.jpg": None})
            lib = await world.library(root)
            async with limited_watcher(world, tmp_path, watches=8) as watcher:
                # Every folder has its watch once this is logged (the observer has started).
                await watcher.logged(lib, "with inotify", what="the library watched by inotify")
                await world.caught_up(lib)
                # More new folders than watches are left: inotify refuses some of them.
                later = make_tree(root, {f"new{i:02d}/x.jpg": None for i in range(12)})
                await watcher.logged(lib, "watch limit", what="the later refusal reported")
                for path in later.values():
                    await imported(world, lib, path, f"{path} after the switch")
                await world.caught_up(lib)
                new = make_tree(root, {"new11/late.jpg": None})["new11/late.jpg"]
                await imported(world, lib, new, "a file written once polling")
            (message,) = watcher.lines(lib, "watch limit")
            assert "first refused: " in message and "polling every" in message, message
