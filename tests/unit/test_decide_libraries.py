"""Decisions on libraries: plain values in (path facts already found), writes or a refusal out."""

from __future__ import annotations

import uuid

from services.api import schemas as s
from services.api.auth import AuthUser
from services.api.decide import Refusal, Write
from services.api.decide import libraries as lib
from shared import events as ev
from shared.errors import Forbidden, InvalidInput

ADA = AuthUser(id=uuid.UUID(int=1), email="a@example.com", name="Ada", is_admin=False)
BEA = AuthUser(id=uuid.UUID(int=2), email="b@example.com", name="Bea", is_admin=False)
ADMIN = AuthUser(id=uuid.UUID(int=3), email="r@example.com", name="Root", is_admin=True)
LIB = uuid.UUID(int=10)
OUTSIDE = "Import path is outside the user's external path /srv/ada"


def _library(kind: str = "EXTERNAL", owner: uuid.UUID = ADA.id) -> lib.LibraryState:
    return lib.LibraryState(LIB, owner, "NAS", kind, ("/srv/ada/2024",), (), 12)


def _create(
    actor: AuthUser, dto: s.CreateLibraryDto, facts: lib.PathFacts, owner_exists: bool = True
) -> Write | Refusal:
    cmd = lib.create_input(actor, dto)
    assert isinstance(cmd, lib.NewLibrary), cmd
    return lib.create_library(
        actor, cmd, LIB, owner_exists=owner_exists, pattern_problem=None, paths=facts
    )


class TestImportPathsInsideTheExternalPath:
    def test_a_path_outside_the_owners_external_path_refuses_the_create(self) -> None:
        dto = s.CreateLibraryDto(import_paths=["/srv/bea"])
        assert _create(ADA, dto, lib.PathFacts("/srv/ada", OUTSIDE)) == Refusal(
            InvalidInput, f"Invalid import path: {OUTSIDE}"
        )

    def test_paths_inside_create_the_library_as_a_new_aggregate(self) -> None:
        dto = s.CreateLibraryDto(import_paths=["/srv/ada/2024/"])
        write = _create(ADA, dto, lib.PathFacts("/srv/ada"))
        assert isinstance(write, Write) and write.expected == 0
        (created,) = write.events
        assert isinstance(created, ev.LibraryCreated)
        assert (created.type, created.owner_id, created.import_paths) == (
            "EXTERNAL",
            ADA.id,
            ["/srv/ada/2024"],
        )
        assert created.exclusion_patterns == list(lib.DEFAULT_EXCLUSION_PATTERNS)

    def test_a_user_without_an_external_path_may_not_create_one(self) -> None:
        assert _create(ADA, s.CreateLibraryDto(), lib.PathFacts(None)) == Refusal(
            Forbidden, "No external path is set for this user; ask an admin to set one"
        )
        assert isinstance(_create(ADMIN, s.CreateLibraryDto(), lib.PathFacts(None)), Write)

    def test_an_edit_to_paths_outside_is_refused_and_writes_nothing(self) -> None:
        dto = s.UpdateLibraryDto(name="Renamed", import_paths=["/etc"])
        outcome = lib.update_library(
            _library(), dto, pattern_problem=None, paths=lib.PathFacts("/srv/ada", OUTSIDE)
        )
        assert outcome == Refusal(InvalidInput, f"Invalid import path: {OUTSIDE}")

    def test_a_scan_of_a_folder_outside_is_refused(self) -> None:
        outcome = lib.request_scan(
            _library(),
            uuid.UUID(int=5),
            ev.ScanMode.NEW,
            requested_by="user",
            path="/etc",
            path_problem="Path is not inside any of the library's import paths",
        )
        assert outcome == Refusal(
            InvalidInput, "Invalid path: Path is not inside any of the library's import paths"
        )


def test_an_upload_library_cannot_be_deleted() -> None:
    assert lib.delete_library(_library("UPLOAD")) == Refusal(
        InvalidInput, "Cannot delete an upload library: every user keeps theirs"
    )
    write = lib.delete_library(_library())
    assert isinstance(write, Write) and write.expected == 12
    assert [type(e) for e in write.events] == [ev.LibraryDeletionStarted]


def test_an_upload_library_is_never_scanned_nor_given_paths() -> None:
    refusal = lib.request_scan(
        _library("UPLOAD"), LIB, ev.ScanMode.NEW, requested_by="user", path=None, path_problem=None
    )
    assert refusal == Refusal(InvalidInput, "Can only refresh external libraries")
    assert lib.update_input(
        _library("UPLOAD"), s.UpdateLibraryDto(import_paths=["/srv/ada"])
    ) == Refusal(InvalidInput, "Upload libraries cannot have import paths")


def test_a_library_is_only_ever_created_external() -> None:
    """One upload library per user: it comes with the user (decide.users), never by create."""
    write = _create(ADMIN, s.CreateLibraryDto(owner_id=ADA.id), lib.PathFacts("/srv/ada"))
    assert isinstance(write, Write)
    assert all(isinstance(e, ev.LibraryCreated) and e.type == "EXTERNAL" for e in write.events)


class TestSomeoneElsesLibrary:
    def test_a_user_cannot_see_or_edit_anothers_library(self) -> None:
        assert lib.visible(BEA, _library(), "library.update") == Refusal(
            InvalidInput, "Not found or no library.update access"
        )
        # ... and cannot tell it from one that does not exist.
        assert lib.visible(BEA, None, "library.update") == lib.visible(
            BEA, _library(), "library.update"
        )

    def test_a_user_cannot_create_a_library_for_another(self) -> None:
        assert lib.create_input(ADA, s.CreateLibraryDto(owner_id=BEA.id)) == Refusal(
            Forbidden, "You can only create libraries for yourself"
        )

    def test_an_admin_may_use_anyones_and_is_told_when_none_exists(self) -> None:
        assert lib.visible(ADMIN, _library()) == _library()
        assert lib.visible(ADMIN, None) == Refusal(InvalidInput, "Library not found")


def test_an_edit_expects_the_library_as_last_read_and_only_records_changes() -> None:
    dto = s.UpdateLibraryDto(name="NAS", import_paths=["/srv/ada/2024", "/srv/ada/2025"])
    write = lib.update_library(_library(), dto, pattern_problem=None, paths=lib.PathFacts("/x"))
    assert isinstance(write, Write) and write.expected == 12
    assert [type(e) for e in write.events] == [ev.ImportPathsChanged]
    same = s.UpdateLibraryDto(name="NAS", import_paths=["/srv/ada/2024/"])
    assert lib.update_library(_library(), same, pattern_problem=None, paths=None) is None


def test_remove_offline_keeps_assets_of_an_unavailable_import_path() -> None:
    gone = lib.OfflineAsset(uuid.UUID(int=20), "deleted", 4)
    waiting = lib.OfflineAsset(uuid.UUID(int=21), "import-path-unavailable", 5)
    kept, removable = lib.offline_split([gone, waiting])
    assert (kept, removable) == ([waiting], [gone])
    (write,) = lib.remove_offline(LIB, removable)
    assert write.expected == 4 and isinstance(write.events[0], ev.AssetRemoved)
