"""Decisions on libraries: create, edit, delete, validate, scan requests, removing offline files.

The file-system facts (is each import path usable, inside the owner's external path, once
resolved) come from shared/paths.py through the handler, as `PathFacts`; the decisions here
say what they mean for the command.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from msgspec import UNSET

from services.api.decide import Refusal, Write, fields_refusal, invalid_field, refuse
from services.api.validation import PATH_LIST_RULES
from shared import events as ev
from shared.errors import Forbidden, InvalidInput
from shared.globs import DEFAULT_EXCLUSION_PATTERNS
from shared.ids import upload_library_id
from shared.paths import strip_trailing_slash

if TYPE_CHECKING:
    from services.api import schemas as s
    from services.api.auth import AuthUser

UPLOAD_LIBRARY_NAME = "Default Library"
"""What Immich v1.9x named the upload library every user got (renaming it is allowed)."""

DEFAULT_LIBRARY_NAME = "New External Library"

KEPT_OFFLINE = frozenset({ev.OfflineReason.IMPORT_PATH_UNAVAILABLE.value})
"""Offline reasons that *remove offline files* leaves alone: the file may well be there."""


def upload_library(user_id: uuid.UUID) -> ev.LibraryCreated:
    """Every user has one upload library, made with the user (published with expected 0)."""
    return ev.LibraryCreated(
        stream_id=upload_library_id(user_id),
        owner_id=user_id,
        name=UPLOAD_LIBRARY_NAME,
        type="UPLOAD",
    )


@dataclass(frozen=True)
class LibraryState:
    """A library as its read-model row holds it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    type: str
    import_paths: tuple[str, ...]
    exclusion_patterns: tuple[str, ...]
    last_seq: int


@dataclass(frozen=True)
class PathFacts:
    """What shared/paths.py found about the paths of a command: the owner's external path and
    the message of the first unusable path (None: all usable, inside the fence)."""

    external_path: str | None
    first_problem: str | None = None


def normalise_paths(paths: list[str]) -> list[str]:
    """Import paths as recorded: a trailing slash dropped (`/photos/` is `/photos`), as Immich
    normalises them; anything else is validated as given."""
    return [strip_trailing_slash(p) for p in paths]


def list_problems(name: str, values: list[str]) -> Refusal | None:
    """Immich's DTO rules on a list (the API checks them at its edge; the web app's forms
    come here): a 400 with the list of messages."""
    return fields_refusal(
        [m for rule in PATH_LIST_RULES if (m := rule.check(name, values)) is not None]
    )


def visible(
    actor: AuthUser, library: LibraryState | None, permission: str = "library.read"
) -> LibraryState | Refusal:
    """The library if the caller may use it for `permission`. As Immich's access checks: a
    user's request for a library that is not theirs (or does not exist) answers 400 `Not found
    or no <permission> access`; an admin's for one that does not exist, 400 `Library not
    found`."""
    if not actor.is_admin and (library is None or library.owner_id != actor.id):
        return refuse(InvalidInput, f"Not found or no {permission} access")
    if library is None:
        return refuse(InvalidInput, "Library not found")
    return library


@dataclass(frozen=True)
class NewLibrary:
    """A create command with Immich's defaults filled in and its lists checked."""

    owner_id: uuid.UUID
    name: str
    import_paths: list[str]
    exclusion_patterns: list[str]


def create_input(actor: AuthUser, dto: s.CreateLibraryDto) -> NewLibrary | Refusal:
    """The caller's own library unless an admin names another owner (clients of Immich before
    v1.99 leave the owner out)."""
    owner_id = actor.id if dto.owner_id is UNSET else dto.owner_id
    if not actor.is_admin and owner_id != actor.id:
        return refuse(Forbidden, "You can only create libraries for yourself")
    name = DEFAULT_LIBRARY_NAME if dto.name is UNSET else dto.name
    if not name.strip():
        return invalid_field("name should not be empty")
    paths = [] if dto.import_paths is UNSET else normalise_paths(dto.import_paths)
    patterns = (
        list(DEFAULT_EXCLUSION_PATTERNS)
        if dto.exclusion_patterns is UNSET
        else dto.exclusion_patterns
    )
    if refusal := list_problems("importPaths", paths):
        return refusal
    return NewLibrary(owner_id, name, paths, patterns)


def create_library(
    actor: AuthUser,
    cmd: NewLibrary,
    library_id: uuid.UUID,
    *,
    owner_exists: bool,
    pattern_problem: Refusal | None,
    paths: PathFacts,
) -> Write | Refusal:
    """An external library (never an upload one: those come with their user). Import paths
    must lie inside the owner's external path; only an admin may make a library for a user
    without one (it then has no import paths until one is set)."""
    if pattern_problem is not None:
        return pattern_problem
    if not owner_exists:
        return refuse(InvalidInput, "User not found")
    if paths.external_path is None and not actor.is_admin:
        return refuse(Forbidden, "No external path is set for this user; ask an admin to set one")
    if paths.first_problem is not None:
        return refuse(InvalidInput, f"Invalid import path: {paths.first_problem}")
    created = ev.LibraryCreated(
        stream_id=library_id,
        owner_id=cmd.owner_id,
        name=cmd.name,
        type="EXTERNAL",
        import_paths=cmd.import_paths,
        exclusion_patterns=cmd.exclusion_patterns,
    )
    return Write((created,), 0)


def update_input(library: LibraryState, dto: s.UpdateLibraryDto) -> Refusal | None:
    """The checks of an edit that need no facts: a name, and no paths on an upload library."""
    if dto.name is not UNSET and not dto.name.strip():
        return invalid_field("name should not be empty")
    if dto.import_paths is not UNSET:
        if library.type == "UPLOAD" and dto.import_paths:
            return refuse(InvalidInput, "Upload libraries cannot have import paths")
        if refusal := list_problems("importPaths", normalise_paths(dto.import_paths)):
            return refusal
    if dto.exclusion_patterns is not UNSET and library.type == "UPLOAD" and dto.exclusion_patterns:
        return refuse(InvalidInput, "Upload libraries cannot have exclusion patterns")
    return None


def update_library(
    library: LibraryState,
    dto: s.UpdateLibraryDto,
    *,
    pattern_problem: Refusal | None,
    paths: PathFacts | None,
) -> Write | Refusal | None:
    """Rename, new import paths (each inside the owner's external path and on disk), new
    exclusion patterns, on the library as last read; None when nothing changes."""
    if refusal := update_input(library, dto):
        return refusal
    events: list[ev.BaseEvent] = []
    if dto.name is not UNSET and dto.name != library.name:
        events.append(ev.LibraryRenamed(stream_id=library.id, name=dto.name))
    if dto.import_paths is not UNSET:
        if paths is not None and paths.first_problem is not None:
            return refuse(InvalidInput, f"Invalid import path: {paths.first_problem}")
        wanted = normalise_paths(dto.import_paths)
        if wanted != list(library.import_paths):
            events.append(ev.ImportPathsChanged(stream_id=library.id, import_paths=wanted))
    if dto.exclusion_patterns is not UNSET:
        if pattern_problem is not None:
            return pattern_problem
        if list(dto.exclusion_patterns) != list(library.exclusion_patterns):
            events.append(
                ev.ExclusionPatternsChanged(
                    stream_id=library.id, exclusion_patterns=dto.exclusion_patterns
                )
            )
    return Write(tuple(events), library.last_seq) if events else None


def delete_library(library: LibraryState) -> Write | Refusal:
    """An upload library cannot be deleted: every user keeps theirs."""
    if library.type == "UPLOAD":
        return refuse(InvalidInput, "Cannot delete an upload library: every user keeps theirs")
    return Write((ev.LibraryDeletionStarted(stream_id=library.id),), library.last_seq)


def validate_library(external_path: str | None) -> Refusal | None:
    """Validation answers per path, but not for an owner without an external path (Immich
    before v1.99)."""
    if external_path is None:
        return refuse(InvalidInput, "User has no external path set")
    return None


def scan_input(library: LibraryState) -> Refusal | None:
    """Only external libraries are scanned."""
    if library.type == "UPLOAD":
        return refuse(InvalidInput, "Can only refresh external libraries")
    return None


def request_scan(
    library: LibraryState,
    scan_id: uuid.UUID,
    mode: ev.ScanMode,
    *,
    requested_by: str,
    path: str | None,
    path_problem: str | None,
) -> Write | Refusal:
    """A scan of the library, or of one folder (or file) inside its import paths. Scan
    requests are bookkeeping on the scans subject: unguarded."""
    if refusal := scan_input(library):
        return refusal
    if path is not None and path_problem is not None:
        return refuse(InvalidInput, f"Invalid path: {path_problem}")
    requested = ev.LibraryScanRequested(
        stream_id=library.id, scan_id=scan_id, mode=mode, requested_by=requested_by, path=path
    )
    return Write((requested,), None)


@dataclass(frozen=True)
class OfflineAsset:
    """An offline asset of a library."""

    id: uuid.UUID
    offline_reason: str | None
    last_seq: int


def offline_split(
    assets: list[OfflineAsset],
) -> tuple[list[OfflineAsset], list[OfflineAsset]]:
    """(kept, removable): assets of an unavailable import path are kept (a drive that is not
    mounted is not a deletion); the others' files are really gone."""
    kept = [a for a in assets if a.offline_reason in KEPT_OFFLINE]
    gone = [a for a in assets if a.offline_reason not in KEPT_OFFLINE]
    return kept, gone


def remove_offline(library_id: uuid.UUID, gone: list[OfflineAsset]) -> list[Write]:
    """Each removal expects the asset's last sequence, so an asset whose file came back in the
    meantime (AssetOnline) is not removed."""
    return [
        Write(
            (ev.AssetRemoved(stream_id=a.id, library_id=library_id, reason="offline-removed"),),
            a.last_seq,
        )
        for a in gone
    ]
