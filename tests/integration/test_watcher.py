"""The watcher: changes on disk reach an external library without anyone asking for a scan."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from services.watcher.app import LibraryConfig, LibraryWatch, Root
from services.watcher.app import serve as serve_watcher
from services.watcher.debounce import UNSEEN, Debouncer
from services.watcher.observer import ImportPathHandler, Touch
from shared.globs import ExclusionMatcher
from shared.ids import external_asset_id
from shared.paths import Signature
from shared.settings import Settings
from tests.factories import jpeg_bytes, make_tree, set_mtime
from tests.helpers import (
    asset_subject_count,
    assets_of,
    births_of,
    create_user,
    external_library,
    ok,
    scan,
    sign_up_admin,
)
from tests.system import Infra, System, eventually, open_system, run_scanner

QUIET = 0.3  # settle window for the inotify tests (the service's default is 1 s)
RELOAD = 0.2  # how often the test watcher re-reads the libraries (30 s in service)
POLL_MS = 200


def _watcher(
    settings: Settings, **options: Any
) -> Callable[[Settings, asyncio.Event], Awaitable[None]]:
    """A service body that runs the watcher with `settings` (watching on), not the system's."""

    async def body(_: Settings, stop: asyncio.Event) -> None:
        await serve_watcher(settings, stop, **{"reload_every": RELOAD, **options})

    return body


class WatchWorld:
    """A system with a scanner and a watcher, an admin, and a user whose external path is
    `media`; no scan is ever requested unless a test says so."""

    def __init__(
        self,
        system: System,
        media: Path,
        admin: dict[str, str],
        user: dict[str, Any],
        settings: Settings,
    ) -> None:
        self.system, self.media, self.admin, self.user = system, media, admin, user
        self.settings = settings
        self._probes = 0

    async def start_watcher(self, **options: Any) -> None:
        await self.system.start("watcher", _watcher(self.settings, **options))

    async def library(self, *paths: Path, **extra: Any) -> str:
        lib = await external_library(
            self.system, self.admin, self.user["id"], [str(p) for p in paths], **extra
        )
        return str(lib["id"])

    async def assets(self, library_id: str) -> dict[str, dict[str, Any]]:
        return {
            a["originalPath"]: a
            for a in await assets_of(self.system, self.admin, library_id, withExif=True)
        }

    async def asset(self, library_id: str, path: Path) -> dict[str, Any] | None:
        real = await asyncio.to_thread(os.path.realpath, path)
        return (await self.assets(library_id)).get(real)

    async def leases(self) -> KeyValue:
        js = self.system.ctx.nc.jetstream()
        return await js.key_value(self.system.settings.nats.name("leases"))

    async def lease_holder(self, library_id: str) -> bytes | None:
        kv = await self.leases()
        try:
            entry = await kv.get(f"watch-{library_id}")
        except KeyNotFoundError:  # never taken, expired, or released (KeyDeletedError)
            return None
        return entry.value or b""

    async def watching(self, library_id: str, root: Path) -> None:
        """Wait until the watcher reacts to files written into `root`.

        The observer starts a moment after the lease is taken, and a file written before it
        starts is never seen; so probes are written one after another until one is imported.
        """
        await eventually(lambda: self._held(library_id), 10, f"a lease on {library_id}")
        polls = 0

        async def probe_imported() -> bool:
            nonlocal polls
            names = {Path(p).name for p in await self.assets(library_id)}
            if any(n.startswith("probe-") for n in names):
                return True
            if polls % 40 == 0:
                self._probes += 1
                (root / f"probe-{self._probes}.jpg").write_bytes(jpeg_bytes())
            polls += 1
            return False

        await eventually(probe_imported, 15, f"the watcher to import a probe in {root}")
        await self.caught_up(library_id)

    async def caught_up(self, library_id: str) -> None:
        """Wait until the library's latest scan (the watcher's catch-up scan) has finished:
        a scan imports what it finds as it is, so a file a test writes slowly must not be met
        by one (it would be recorded at the size it had then, and changed later)."""

        async def finished() -> bool:
            r = await self.system.client.get(
                f"/api/libraries/{library_id}/scan", headers=self.admin
            )
            state = r.json() if r.status_code == 200 else {}
            return bool(state.get("scanId")) and state.get("state") == "finished"

        await eventually(finished, 20, f"the catch-up scan of {library_id} to finish")

    async def _held(self, library_id: str) -> bool:
        return await self.lease_holder(library_id) is not None


@contextlib.asynccontextmanager
async def open_world(
    infra: Infra, tmp_path: Path, *, polling: bool = False, watch: bool = True
) -> AsyncIterator[WatchWorld]:
    async with open_system(infra, tmp_path) as system:
        base = system.settings
        settings = msgspec.structs.replace(
            base,
            scan=msgspec.structs.replace(
                base.scan, watch_enabled=True, watch_use_polling=polling, watch_interval_ms=POLL_MS
            ),
        )
        await system.start("scanner", run_scanner)
        media = tmp_path / "media"
        media.mkdir()
        admin = await sign_up_admin(system)
        user, _ = await create_user(system, admin, "owner@example.com", str(media))
        world = WatchWorld(system, media, admin, user, settings)
        if watch:
            await world.start_watcher(quiet=None if polling else QUIET)
        yield world


@pytest.fixture
async def world(infra: Infra, tmp_path: Path) -> AsyncIterator[WatchWorld]:
    async with open_world(infra, tmp_path) as w:
        yield w


@pytest.fixture(params=["inotify", "polling"])
async def any_world(
    request: pytest.FixtureRequest, infra: Infra, tmp_path: Path
) -> AsyncIterator[WatchWorld]:
    async with open_world(infra, tmp_path, polling=request.param == "polling") as w:
        yield w


class TestWatchNative:
    async def test_new_file_becomes_asset_without_scan(self, world: WatchWorld) -> None:
        lib = await world.library(world.media)
        await world.watching(lib, world.media)
        files = make_tree(
            world.media,
            {"trip/day 1/new.jpg": None, "trip/notes.txt": b"x", "trip/.hidden.jpg": None},
        )

        async def imported() -> bool:
            return await world.asset(lib, files["trip/day 1/new.jpg"]) is not None

        await eventually(imported, 10, "new.jpg to become an asset")
        names = {Path(p).name for p in await world.assets(lib)}
        assert ".hidden.jpg" not in names and "notes.txt" not in names

    async def test_modified_file_is_reread(self, world: WatchWorld) -> None:
        files = make_tree(world.media, {"a.jpg": None, "b.jpg": None})
        for path in files.values():
            set_mtime(path, 1_600_000_000)
        lib = await world.library(world.media)
        await scan(world.system, world.admin, lib)
        await world.watching(lib, world.media)
        files["a.jpg"].write_bytes(jpeg_bytes((48, 32)))
        set_mtime(files["a.jpg"], 1_700_000_000)

        async def reread() -> bool:
            a = await world.asset(lib, files["a.jpg"])
            return a is not None and a["fileModifiedAt"].startswith("2023-11-14T22:13:20")

        await eventually(reread, 10, "a.jpg's new mtime to be recorded")
        b = await world.asset(lib, files["b.jpg"])
        assert b is not None and b["fileModifiedAt"].startswith("2020-09-13T12:26:40")

    async def test_deleted_files_and_folders_go_offline(self, world: WatchWorld) -> None:
        files = make_tree(
            world.media,
            {"a.jpg": None, "keep.jpg": None, "album/b.jpg": None, "album/deep/c.jpg": None},
        )
        lib = await world.library(world.media)
        await scan(world.system, world.admin, lib)
        await world.watching(lib, world.media)
        files["a.jpg"].unlink()
        shutil.rmtree(world.media / "album")
        gone = {str(files[k]) for k in ("a.jpg", "album/b.jpg", "album/deep/c.jpg")}

        async def offline() -> bool:
            assets = await world.assets(lib)
            return all(assets[p]["isOffline"] for p in gone)

        await eventually(offline, 10, "the deleted files' assets to go offline")
        assets = await world.assets(lib)
        assert {assets[p]["offlineReason"] for p in gone} == {"deleted"}
        assert assets[str(files["keep.jpg"])]["isOffline"] is False

    async def test_slowly_written_file_is_imported_once_complete(self, world: WatchWorld) -> None:
        # The folder exists before watching starts: a file written into a brand-new folder
        # before watchdog has added that folder's watch is a separate race (see the notes).
        (world.media / "incoming").mkdir()
        lib = await world.library(world.media)
        await world.watching(lib, world.media)
        path = world.media / "incoming" / "big.jpg"
        data = jpeg_bytes((640, 480), (10, 120, 200)) + os.urandom(64_000)
        chunks = [data[i : i + len(data) // 4 + 1] for i in range(0, len(data), len(data) // 4 + 1)]
        with path.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                # The input, not a wait for an outcome: a copy that stalls for longer than the
                # settle window between chunks, with the file still open.
                await asyncio.sleep(QUIET * 1.7)

        async def imported() -> bool:
            a = await world.asset(lib, path)
            return a is not None and a["exifInfo"]["fileSizeInByte"] == len(data)

        await eventually(imported, 10, "big.jpg to be imported at its final size")
        real = await asyncio.to_thread(os.path.realpath, path)
        asset_id = external_asset_id(uuid.UUID(lib), real)
        # Discovered once, complete; never changed afterwards (nothing on its own subject).
        born = await births_of(world.system, uuid.UUID(lib), real)
        assert [f.size for f in born] == [len(data)], born
        assert await asset_subject_count(world.system, asset_id) == 0

    @pytest.mark.parametrize("how", ["made-in-place", "moved-in"])
    async def test_file_in_a_new_folder_is_imported_only_once_closed(
        self, world: WatchWorld, tmp_path: Path, how: str
    ) -> None:
        # The known race: a folder created just before its files. inotify watches the new
        # folder only once its IN_CREATE has been read, so the file's creation and first write
        # may come before that watch (watchdog then reports the file by listing the folder,
        # with no write in progress to say so). Moving in a folder with a file still being
        # written makes that order certain.
        lib = await world.library(world.media)
        await world.watching(lib, world.media)
        data = jpeg_bytes((640, 480), (200, 120, 10)) + os.urandom(64_000)
        step = len(data) // 4 + 1
        outside = tmp_path / "staging"  # outside the import path, inside nothing watched
        folder = (outside if how == "moved-in" else world.media) / "new folder"
        folder.mkdir(parents=True)
        path = world.media / "new folder" / "copy.jpg"
        with (folder / "copy.jpg").open("wb") as f:
            for i in range(0, len(data), step):
                f.write(data[i : i + step])
                f.flush()
                if i == 0 and how == "moved-in":
                    folder.rename(world.media / "new folder")
                # The input: a copy that stalls longer than the settle window, file open.
                await asyncio.sleep(QUIET * 1.7)

        async def complete() -> bool:
            a = await world.asset(lib, path)
            return a is not None and a["exifInfo"]["fileSizeInByte"] == len(data)

        await eventually(complete, 10, "copy.jpg to be imported at its final size")
        real = await asyncio.to_thread(os.path.realpath, path)
        asset_id = external_asset_id(uuid.UUID(lib), real)
        # Never recorded incomplete: born once at its final size, nothing after on its subject.
        born = await births_of(world.system, uuid.UUID(lib), real)
        assert [f.size for f in born] == [len(data)], born
        assert await asset_subject_count(world.system, asset_id) == 0

    @pytest.mark.slow
    async def test_burst_of_thousands_of_files_is_imported_without_a_scan(
        self, world: WatchWorld
    ) -> None:
        lib = await world.library(world.media)
        await world.watching(lib, world.media)  # and its catch-up scan has finished
        before = await ok(
            await world.system.client.get(f"/api/libraries/{lib}/scan", headers=world.admin)
        )
        payload = jpeg_bytes()
        written: set[str] = set()

        def burst() -> None:
            for d in range(50):
                folder = world.media / "burst" / f"card{d:02d}"
                folder.mkdir(parents=True)
                for i in range(100):
                    path = folder / f"IMG_{i:04d}.jpg"
                    path.write_bytes(payload)
                    written.add(str(path))

        await asyncio.to_thread(burst)
        real = {os.path.realpath(p) for p in written}

        async def all_imported() -> bool:
            return real <= set(await world.assets(lib))

        await eventually(all_imported, 60, "all 5,000 files of the burst to become assets")
        after = await ok(
            await world.system.client.get(f"/api/libraries/{lib}/scan", headers=world.admin)
        )
        assert after["scanId"] == before["scanId"]  # the watcher alone: no scan since


class TestWatchModes:
    async def test_polling_picks_up_a_new_file(self, infra: Infra, tmp_path: Path) -> None:
        async with open_world(infra, tmp_path, polling=True) as world:
            lib = await world.library(world.media)
            await world.watching(lib, world.media)
            files = make_tree(world.media, {"new/x.jpg": None})

            async def imported() -> bool:
                return await world.asset(lib, files["new/x.jpg"]) is not None

            await eventually(imported, 10, "x.jpg to be found by polling")

    async def test_symlink_out_of_the_fence_is_not_imported(
        self, any_world: WatchWorld, tmp_path: Path
    ) -> None:
        world = any_world
        secret = tmp_path / "secret"
        make_tree(secret, {"s.jpg": None})
        lib = await world.library(world.media)
        await world.watching(lib, world.media)
        (world.media / "escape").symlink_to(secret)
        (world.media / "escape.jpg").symlink_to(secret / "s.jpg")
        (world.media / "sub").mkdir()
        (world.media / "sub" / "out.jpg").symlink_to(secret / "s.jpg")
        make_tree(secret, {"later.jpg": None})  # written through no link, but reachable by one
        files = make_tree(world.media, {"sub/ok.jpg": None})

        async def sentinel() -> bool:
            return await world.asset(lib, files["sub/ok.jpg"]) is not None

        await eventually(sentinel, 10, "sub/ok.jpg to become an asset")
        paths = list(await world.assets(lib))
        assert not [p for p in paths if p.startswith(str(secret.resolve()))], paths
        assert not [p for p in paths if Path(p).name in ("s.jpg", "later.jpg", "out.jpg")]


class TestLease:
    async def test_library_leased_elsewhere_is_watched_and_caught_up_once_released(
        self, infra: Infra, tmp_path: Path
    ) -> None:
        async with open_world(infra, tmp_path, watch=False) as world:
            (world.media / "one" / "early").mkdir(parents=True)
            (world.media / "two").mkdir()
            one = await world.library(world.media / "one")
            two = await world.library(world.media / "two")
            kv = await world.leases()
            await kv.create(f"watch-{one}", b"another-replica")
            await world.start_watcher(quiet=QUIET)
            # Library two is watched, so the watcher has been through its libraries.
            await world.watching(two, world.media / "two")
            early = make_tree(world.media / "one", {"early/e.jpg": None})["early/e.jpg"]
            await kv.delete(f"watch-{one}")

            async def taken() -> bool:
                return await world.lease_holder(one) not in (None, b"another-replica")

            await eventually(taken, 10, "the watcher to take the released lease")
            await world.watching(one, world.media / "one")

            # Written while another replica held the lease, when nobody of ours watched: the
            # catch-up scan of the takeover imports it.
            async def caught_up() -> bool:
                return await world.asset(one, early) is not None

            await eventually(caught_up, 10, "the takeover's scan to import the early file")


# --- the debouncer and the event filter, without a file system --------------------------------


class FakeFiles:
    """A stat function over a dict: path -> (size, mtime)."""

    def __init__(self) -> None:
        self.sigs: dict[str, Signature] = {}

    def __call__(self, path: str) -> Signature | None:
        return self.sigs.get(path)


def debouncer(files: FakeFiles, quiet: float = 1.0, **kw: Any) -> Debouncer:
    def no_clock() -> float:
        raise AssertionError("tests pass `now`")

    return Debouncer(quiet, clock=no_clock, stat=files, **kw)


class TestDebouncer:
    def test_burst_in_one_folder_is_released_once_after_quiet(self) -> None:
        files = FakeFiles()
        d = debouncer(files)
        for i in range(1000):
            files.sigs[f"/m/a/{i}.jpg"] = (10, 1)
            d.touch("/m/a", f"/m/a/{i}.jpg", (10, 1), False, now=i / 1000)
        assert len(d) == 1
        assert d.due(now=1.5) == []  # last event at 0.999
        assert d.due(now=2.0) == ["/m/a"]
        assert d.due(now=9.0) == [] and len(d) == 0

    def test_every_event_restarts_the_quiet_window(self) -> None:
        d = debouncer(FakeFiles())
        d.touch("/m/a", now=0.0)
        d.touch("/m/a", now=0.8)
        assert d.due(now=1.5) == []
        assert d.due(now=1.8) == ["/m/a"]

    def test_folders_settle_independently(self) -> None:
        d = debouncer(FakeFiles())
        d.touch("/m/a", now=0.0)
        d.touch("/m/b", now=0.5)
        assert d.due(now=1.0) == ["/m/a"]
        assert d.due(now=1.5) == ["/m/b"]

    def test_growing_file_keeps_its_folder_pending(self) -> None:
        files = FakeFiles()
        d = debouncer(files)
        files.sigs["/m/a/v.mp4"] = (100, 1)
        d.touch("/m/a", "/m/a/v.mp4", (100, 1), None, now=0.0)
        # No more events (polling between polls, or a writer inotify cannot see), but it grows.
        files.sigs["/m/a/v.mp4"] = (200, 2)
        assert d.due(now=1.0) == []
        files.sigs["/m/a/v.mp4"] = (300, 3)
        assert d.due(now=2.0) == []
        assert d.due(now=2.5) == []  # re-checked one quiet after the last change, not before
        assert d.due(now=3.0) == ["/m/a"]

    def test_unseen_file_needs_two_equal_checks(self) -> None:
        files = FakeFiles()
        d = debouncer(files)
        files.sigs["/m/a/x.jpg"] = (5, 5)
        d.touch("/m/a", "/m/a/x.jpg", UNSEEN, None, now=0.0)
        assert d.due(now=1.0) == []
        assert d.due(now=2.0) == ["/m/a"]

    def test_file_open_for_writing_holds_until_closed(self) -> None:
        files = FakeFiles()
        d = debouncer(files)
        files.sigs["/m/a/x.jpg"] = (50, 1)
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), True, now=0.0)
        # The writer stalls with the file open: same size for a long while.
        assert d.due(now=5.0) == [] and d.due(now=10.0) == []
        files.sigs["/m/a/x.jpg"] = (80, 2)
        d.touch("/m/a", "/m/a/x.jpg", (80, 2), False, now=11.0)  # closed
        assert d.due(now=11.5) == []
        assert d.due(now=12.0) == ["/m/a"]

    def test_file_never_closed_is_released_after_the_grace(self) -> None:
        files = FakeFiles()
        d = debouncer(files, open_grace=30.0)
        files.sigs["/m/a/x.jpg"] = (50, 1)
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), True, now=0.0)
        assert d.due(now=29.0) == []
        assert d.due(now=30.0) == ["/m/a"]

    def test_touch_without_writing_keeps_what_was_known(self) -> None:
        files = FakeFiles()
        d = debouncer(files)
        files.sigs["/m/a/x.jpg"] = (50, 1)
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), True, now=0.0)
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), None, now=0.1)  # an attrib event mid-write
        assert d.due(now=5.0) == []

    def test_deleted_file_settles_at_once(self) -> None:
        files = FakeFiles()
        d = debouncer(files)
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), True, now=0.0)
        d.touch("/m/a", "/m/a/x.jpg", None, None, now=0.2)  # deleted while being written
        assert d.due(now=1.2) == ["/m/a"]

    def test_file_open_for_writing_holds_its_folder_until_nobody_writes(self) -> None:
        files = FakeFiles()
        writing: set[str] = {"/m/a/x.jpg"}
        d = debouncer(files, open_grace=30.0, busy=lambda p: p in writing)
        files.sigs["/m/a/x.jpg"] = (50, 1)
        # Announced by a listing (a folder moved in): no write event, stalled, still open.
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), None, now=0.0)
        assert d.due(now=1.0) == [] and d.due(now=5.0) == []
        writing.clear()  # closed (its close event may come late, or never)
        assert d.due(now=6.0) == ["/m/a"]

    def test_file_open_for_writing_is_released_after_the_grace(self) -> None:
        files = FakeFiles()
        d = debouncer(files, open_grace=30.0, busy=lambda p: True)
        files.sigs["/m/a/x.jpg"] = (50, 1)
        d.touch("/m/a", "/m/a/x.jpg", (50, 1), None, now=0.0)
        assert d.due(now=29.0) == []
        assert d.due(now=30.0) == ["/m/a"]

    def test_tracked_files_per_folder_are_bounded(self) -> None:
        files = FakeFiles()
        d = debouncer(files, max_files=3)
        for i in range(10):
            d.touch("/m/a", f"/m/a/{i}.jpg", (1, 1), True, now=0.0)
        # Only the 3 newest are remembered; they are all gone now, so the folder settles.
        for i in range(7, 10):
            d.touch("/m/a", f"/m/a/{i}.jpg", None, None, now=0.0)
        assert d.due(now=1.0) == ["/m/a"]


class TestEventFilter:
    def handler(
        self, *, native: bool = True, patterns: list[str] | None = None
    ) -> ImportPathHandler:
        return ImportPathHandler(
            uuid.uuid4(),
            "/m/lib",
            ExclusionMatcher(patterns or ["**/@eaDir/**"]),
            native=native,
            sink=lambda t: None,
            stat=lambda p: (7, 7),
        )

    def test_write_then_close_of_a_photo(self) -> None:
        h = self.handler()
        assert h.touches(FileCreatedEvent("/m/lib/a/x.jpg")) == [
            Touch("/m/lib/a", "/m/lib/a/x.jpg", (7, 7), None)
        ]
        assert h.touches(FileModifiedEvent("/m/lib/a/x.jpg")) == [
            Touch("/m/lib/a", "/m/lib/a/x.jpg", (7, 7), True)
        ]
        assert h.touches(FileClosedEvent("/m/lib/a/x.jpg")) == [
            Touch("/m/lib/a", "/m/lib/a/x.jpg", (7, 7), False)
        ]
        # A new mtime alone (touch -m, utime) is IN_ATTRIB.
        assert h.touches(FileAttribEvent("/m/lib/a/x.jpg")) == [
            Touch("/m/lib/a", "/m/lib/a/x.jpg", (7, 7), None)
        ]

    def test_polling_never_claims_a_writer(self) -> None:
        h = self.handler(native=False)
        assert h.touches(FileModifiedEvent("/m/lib/x.jpg"))[0].writing is None

    def test_irrelevant_events_are_ignored(self) -> None:
        h = self.handler()
        for event in (
            FileCreatedEvent("/m/lib/notes.txt"),
            FileModifiedEvent("/m/lib/.x.jpg"),
            FileCreatedEvent("/m/lib/.thumbs/x.jpg"),
            FileOpenedEvent("/m/lib/x.jpg"),
            FileCreatedEvent("/m/lib/@eaDir/x.jpg"),
            DirModifiedEvent("/m/lib/a"),
            FileCreatedEvent("/m/other/x.jpg"),
            FileCreatedEvent("/m/lib2/x.jpg"),
            DirDeletedEvent("/m/lib"),
        ):
            assert h.touches(event) == [], event

    def test_deletions_and_moves_touch_both_folders(self) -> None:
        h = self.handler()
        assert h.touches(FileDeletedEvent("/m/lib/a/old.txt")) == [Touch("/m/lib/a")]
        assert h.touches(FileDeletedEvent("/m/lib/a/x.jpg")) == [
            Touch("/m/lib/a", "/m/lib/a/x.jpg", None, False)
        ]
        assert h.touches(FileMovedEvent("/m/lib/a/x.jpg.part", "/m/lib/b/x.jpg")) == [
            Touch("/m/lib/a"),
            Touch("/m/lib/b", "/m/lib/b/x.jpg", (7, 7), False),
        ]
        assert h.touches(FileMovedEvent("/m/lib/a/x.jpg", "/m/lib/.trash/x.jpg")) == [
            Touch("/m/lib/a", "/m/lib/a/x.jpg", None, False)
        ]

    def test_folder_events(self) -> None:
        h = self.handler()
        assert h.touches(DirCreatedEvent("/m/lib/a/new")) == [
            Touch("/m/lib/a"),
            Touch("/m/lib/a/new"),
        ]
        assert h.touches(DirDeletedEvent("/m/lib/a/old")) == [Touch("/m/lib/a")]
        assert h.touches(DirMovedEvent("/m/lib/a/x", "/m/lib/b/y")) == [
            Touch("/m/lib/a"),
            Touch("/m/lib/b"),
            Touch("/m/lib/b/y"),
        ]
        assert h.touches(DirCreatedEvent("/m/lib/.cache")) == []


class TestSortOut:
    def watch(self, root: Path, fence: Path) -> LibraryWatch:
        config = LibraryConfig(uuid.uuid4(), (str(root),), (), str(fence))
        return LibraryWatch(
            config,
            lease=None,
            debouncer=Debouncer(1.0),  # type: ignore[arg-type]
            roots=(Root(str(root), str(root)),),
            fence=str(fence),
        )

    def test_vanished_folders_are_left_to_their_nearest_existing_ancestor(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "lib"
        (root / "keep").mkdir(parents=True)
        w = self.watch(root, tmp_path)
        gone, deeper = str(root / "keep" / "gone"), str(root / "keep" / "gone" / "deep")
        plan = w.sort_out([deeper, gone])
        assert plan.publish == [] and plan.deferred == [str(root / "keep")]
        plan = w.sort_out([deeper, str(root / "keep"), gone])
        assert [d for d, _ in plan.publish] == [str(root / "keep")] and plan.deferred == []

    def test_folders_outside_the_import_path_or_fence_are_skipped(self, tmp_path: Path) -> None:
        root, outside = tmp_path / "lib", tmp_path / "outside"
        root.mkdir()
        outside.mkdir()
        (root / "link").symlink_to(outside)
        plan = self.watch(root, tmp_path / "lib").sort_out(
            [str(root / "link"), str(tmp_path), str(root)]
        )
        assert plan.skipped == [str(root / "link"), str(tmp_path)]
        assert [d for d, _ in plan.publish] == [str(root)]

    def test_a_vanished_import_path_is_left_to_the_next_scan(self, tmp_path: Path) -> None:
        plan = self.watch(tmp_path / "lib", tmp_path).sort_out([str(tmp_path / "lib")])
        assert not plan.publish and not plan.deferred and not plan.skipped
