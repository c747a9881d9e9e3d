"""The scanner's decisions besides per-file events, and import-path reasons, as pure functions."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from services.scanner import rules
from services.scanner.crawl import Seen
from shared import events as ev
from shared.importpath import PathProblem, Unusable, describe, scan_message
from shared.scanprogress import ScanProgress, TaskDone
from shared.work import (
    WORK_ENCODER,
    ScanFolder,
    ScanPruned,
    ScanTree,
    TaskKind,
    WatchFolder,
    decode_task,
    kind_of,
)

SCAN = uuid.UUID(int=1)
LIB = uuid.UUID(int=2)


class TestTaskKinds:
    def test_a_tree_task_queues_every_subfolder_as_a_tree(self) -> None:
        subs = rules.subfolder_tasks(ScanTree(**_common()), ["/m/a/x", "/m/a/y"], {"/m/a/x": 0})
        assert [(type(t), t.path) for t in subs] == [(ScanTree, "/m/a/x"), (ScanTree, "/m/a/y")]

    def test_a_pruned_task_queues_only_subfolders_the_index_lacks(self) -> None:
        subs = rules.subfolder_tasks(ScanPruned(**_common()), ["/m/a/x", "/m/a/y"], ["/m/a/x"])
        assert [(type(t), t.path) for t in subs] == [(ScanTree, "/m/a/y")]

    @pytest.mark.parametrize("kind", [ScanFolder, WatchFolder])
    def test_a_single_folder_task_queues_nothing_below(self, kind: type[ScanFolder]) -> None:
        assert rules.subfolder_tasks(kind(**_common()), ["/m/a/x"], []) == []

    def test_only_watch_tasks_are_outside_a_counted_scan(self) -> None:
        assert [rules.counted(k(**_common())) for k in (ScanTree, ScanPruned, ScanFolder)] == [
            True,
            True,
            True,
        ]
        assert not rules.counted(WatchFolder(**_common()))

    def test_a_task_says_its_kind_on_the_wire(self) -> None:
        raw = WORK_ENCODER.encode(WatchFolder(**_common(), settle_ms=1500))
        assert msgspec.json.decode(raw)["kind"] == "watch-folder"
        assert decode_task(raw) == WatchFolder(**_common(), settle_ms=1500)
        assert kind_of(decode_task(raw)) is TaskKind.WATCH_FOLDER

    @pytest.mark.parametrize(
        ("old", "expected"),
        [
            ({}, ScanTree),
            ({"skip_indexed": True}, ScanPruned),
            ({"recursive": False}, ScanFolder),
            ({"recursive": False, "watch": True, "settle_ms": 700}, WatchFolder),
        ],
    )
    def test_a_task_queued_by_older_code_still_decodes(
        self, old: dict[str, object], expected: type[ScanTree]
    ) -> None:
        """Work in flight on an upgraded system: the four booleans become one kind."""
        raw = msgspec.json.encode(
            {"scan_id": str(SCAN), "library_id": str(LIB), "path": "/m/a", "import_path": "/m"}
            | {"mode": "modified"}
            | old
        )
        task = decode_task(raw)
        assert type(task) is expected and task.mode is ev.ScanMode.MODIFIED
        assert task.path == "/m/a" and task.import_path == "/m"
        if isinstance(task, WatchFolder):
            assert task.settle_ms == 700

    def test_a_task_of_an_unknown_kind_is_refused(self) -> None:
        raw = msgspec.json.encode({**msgspec.to_builtins(ScanTree(**_common())), "kind": "x"})
        with pytest.raises(msgspec.ValidationError):
            decode_task(raw)


def _common() -> dict[str, object]:
    return {"scan_id": SCAN, "library_id": LIB, "path": "/m/a", "import_path": "/m"}


class TestFolderRules:
    def test_files_still_being_written_are_left_to_the_next_watch_task(self) -> None:
        seen = [Seen("/m/a/old.jpg", "IMAGE", 1_000, 1), Seen("/m/a/new.jpg", "IMAGE", 9_500, 1)]
        kept = rules.settled(WatchFolder(**_common(), settle_ms=1000), seen, now_ms=10_000)
        assert [s.path for s in kept] == ["/m/a/old.jpg"]
        assert rules.settled(ScanTree(**_common()), seen, now_ms=10_000) == seen

    def test_a_folder_listed_just_after_a_change_is_indexed_as_always_relist(self) -> None:
        task = ScanTree(**_common())
        now = 100 * 10**9
        fresh = rules.index_entry(task, now - 10**9, now, "h", None)
        assert fresh is not None and fresh.mtime_ns == 0
        old = rules.index_entry(task, now - 5 * 10**9, now, "h", None)
        assert old is not None and old.mtime_ns == now - 5 * 10**9

    def test_an_index_entry_already_held_is_not_recorded_again(self) -> None:
        now = 100 * 10**9
        assert rules.index_entry(ScanTree(**_common()), 10**9, now, "h", (10**9, "h")) is None
        assert rules.index_entry(ScanTree(**_common()), 10**9, now, "h2", (10**9, "h")) is not None
        assert rules.index_entry(ScanTree(**_common()), None, now, "h", None) is None

    def test_vanished_subfolders_are_the_ones_with_assets_not_listed(self) -> None:
        gone = rules.vanished_children("/m", {"/m/a", "/m/b", "/m/c"}, {"/m/b"})
        assert gone == ["/m/a", "/m/c"]


class TestImportPathRules:
    def test_an_inner_import_path_is_walked_as_part_of_the_outer_one(self) -> None:
        roots = [("/m/a", "/m/a"), ("/m", "/m"), ("/n", "/n"), ("/n", "/link-to-n")]
        assert rules.outermost(roots) == [("/m", "/m"), ("/n", "/link-to-n")]

    def test_an_empty_mount_point_that_held_files_is_a_drive_gone(self) -> None:
        problem = rules.drive_missing(rules.RootProbe(True, 5, 5), held=3, recorded_device=None)
        assert problem == PathProblem(reason=Unusable.EMPTY_BUT_HELD_FILES, held=3)
        assert rules.drive_missing(rules.RootProbe(True, 5, 5), 0, None) is None

    def test_a_folder_back_on_its_parents_device_is_unmounted(self) -> None:
        problem = rules.drive_missing(rules.RootProbe(False, 5, 5), 0, recorded_device=9)
        assert problem is not None and problem.reason is Unusable.UNMOUNTED
        assert rules.drive_missing(rules.RootProbe(False, 9, 5), 0, recorded_device=9) is None

    @pytest.mark.parametrize(
        ("reason", "fenced", "offline"),
        [
            (Unusable.OUTSIDE_EXTERNAL_PATH, True, ev.OfflineReason.OUTSIDE_EXTERNAL_PATH),
            (Unusable.NO_EXTERNAL_PATH, True, ev.OfflineReason.OUTSIDE_EXTERNAL_PATH),
            (Unusable.MISSING, False, ev.OfflineReason.OUTSIDE_EXTERNAL_PATH),
            (Unusable.MISSING, True, ev.OfflineReason.IMPORT_PATH_UNAVAILABLE),
            (Unusable.UNMOUNTED, True, ev.OfflineReason.IMPORT_PATH_UNAVAILABLE),
            (Unusable.UPLOAD_FOLDER, True, ev.OfflineReason.IMPORT_PATH_UNAVAILABLE),
        ],
    )
    def test_assets_go_offline_for_the_reason_their_import_path_is_unusable(
        self, reason: Unusable, fenced: bool, offline: ev.OfflineReason
    ) -> None:
        assert rules.offline_reason(PathProblem(reason=reason), fenced) is offline

    def test_a_scan_of_a_path_lies_in_the_usable_import_path_holding_it(self) -> None:
        missing = PathProblem(reason=Unusable.MISSING)
        checked = [("/x", "", missing), ("/m", "/real/m", None)]
        assert rules.path_scan_root(checked, "/real/m/sub/a.jpg") == "/m"
        assert rules.path_scan_root(checked, "/elsewhere") is None

    def test_lost_task_records_give_way_to_the_live_counters(self) -> None:
        live = ScanProgress(dirs_done=5, files_seen=40)
        assert rules.final_totals(live, TaskDone(dirs=3, files=30)) == TaskDone(dirs=5, files=40)
        recorded = TaskDone(dirs=5, files=41)
        assert rules.final_totals(live, recorded) is recorded


class TestReasonWords:
    @pytest.mark.parametrize(
        ("problem", "words"),
        [
            (PathProblem(reason=Unusable.MISSING), "Path does not exist (ENOENT)"),
            (PathProblem(reason=Unusable.DANGLING_SYMLINK), "Path does not exist (ENOENT)"),
            (PathProblem(reason=Unusable.NOT_A_DIRECTORY), "Not a directory"),
            (PathProblem(reason=Unusable.UNREADABLE), "Lacking read permission for folder"),
            (
                PathProblem(reason=Unusable.OUTSIDE_EXTERNAL_PATH, external_path="/ext"),
                "Import path is outside the user's external path /ext",
            ),
            (
                PathProblem(reason=Unusable.UPLOAD_FOLDER),
                "Cannot use media upload folder for external libraries",
            ),
            (PathProblem(reason=Unusable.INVALID, detail="Import path must not be empty"), None),
        ],
    )
    def test_the_validate_route_words_are_immichs(self, problem: PathProblem, words: str) -> None:
        assert describe(problem) == (words or problem.detail)

    def test_every_reason_has_words(self) -> None:
        for reason in Unusable:
            assert describe(PathProblem(reason=reason, detail="d")), reason

    def test_a_missing_import_path_that_held_files_asks_for_the_drive(self) -> None:
        message = scan_message("/m/usb", PathProblem(reason=Unusable.DANGLING_SYMLINK, held=2))
        assert message.startswith("import path unavailable: Path does not exist (ENOENT)")
        assert "symbolic link whose target is gone" in message
        assert "it held 2 files at the last scan. Is the drive mounted?" in message

    def test_an_import_path_outside_the_fence_does_not_talk_of_drives(self) -> None:
        problem = PathProblem(reason=Unusable.OUTSIDE_EXTERNAL_PATH, external_path="/e", held=4)
        assert "drive" not in scan_message("/x", problem)

    def test_an_emptied_mount_point_names_its_path_and_count(self) -> None:
        message = scan_message(
            "/m/usb", PathProblem(reason=Unusable.EMPTY_BUT_HELD_FILES, held=1200)
        )
        assert "/m/usb: it is empty; it held 1,200 files at the last scan" in message
