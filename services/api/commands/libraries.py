"""Handlers of libraries: load the library and its path facts, decide (decide/libraries.py),
publish, wait."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from services.api import queries
from services.api import schemas as s
from services.api.commands.publish import carry_out, carry_out_each, off_loop
from services.api.decide import Refusal, accepted, refuse
from services.api.decide import libraries as decide
from shared.errors import InvalidInput
from shared.globs import validate_patterns
from shared.paths import (
    LookupBudget,
    check_import_path_shape,
    validate_import_path,
    validate_scan_path,
)

if TYPE_CHECKING:
    from sqlalchemy import Row

    from services.api.auth import AuthUser
    from services.api.context import Context
    from shared import events as ev


def library_state(row: Row[Any] | None) -> decide.LibraryState | None:
    """The rules' view of a library's read-model row."""
    if row is None:
        return None
    return decide.LibraryState(
        row.id,
        row.owner_id,
        row.name,
        row.type,
        tuple(row.import_paths),
        tuple(row.exclusion_patterns),
        row.last_seq,
    )


def _pattern_problem(patterns: list[str]) -> Refusal | None:
    """Blocking (patterns are translated and compiled): Immich's list rules, then whether
    each pattern is well-formed and cheap to match."""
    if refusal := decide.list_problems("exclusionPatterns", patterns):
        return refusal
    refused = validate_patterns(patterns)
    if refused is None:
        return None
    pattern, msg = refused
    return refuse(InvalidInput, f"Invalid exclusion pattern {pattern!r}: {msg}")


async def check_patterns(patterns: list[str]) -> None:
    """Refuse patterns that are malformed or could make matching slow (off the event loop)."""
    accepted(await off_loop(_pattern_problem, patterns))


def _first_bad_path(
    paths: list[str], external_path: str | None, upload: str, exist: bool
) -> str | None:
    """Blocking: the message for the first unusable path (one lookup budget for them all)."""
    check = validate_import_path if exist else check_import_path_shape
    budget = LookupBudget()
    for path in paths:
        if msg := check(path, external_path, upload, budget=budget):
            return msg
    return None


def _validate_paths(
    paths: list[str], external_path: str | None, upload: str
) -> list[tuple[str, str | None]]:
    """Blocking: each path with why it is unusable; one lookup budget for them all."""
    budget = LookupBudget()
    return [(p, validate_import_path(p, external_path, upload, budget=budget)) for p in paths]


async def _owner(ctx: Context, owner_id: uuid.UUID) -> Row[Any] | None:
    async with ctx.engine.connect() as conn:
        return await queries.get_user(conn, owner_id)


async def _path_facts(
    ctx: Context, external_path: str | None, paths: list[str], exist: bool
) -> decide.PathFacts:
    upload = str(ctx.settings.upload_path)
    problem = await off_loop(_first_bad_path, paths, external_path, upload, exist)
    return decide.PathFacts(external_path, problem)


async def create_library(ctx: Context, actor: AuthUser, dto: s.CreateLibraryDto) -> uuid.UUID:
    """An external library; an admin may create one for anyone, a user only for themself."""
    cmd = accepted(decide.create_input(actor, dto))
    patterns = await off_loop(_pattern_problem, cmd.exclusion_patterns)
    owner = await _owner(ctx, cmd.owner_id)
    external = None if owner is None else owner.external_path
    facts = decide.PathFacts(external)
    if owner is not None and patterns is None and (external is not None or actor.is_admin):
        facts = await _path_facts(ctx, external, cmd.import_paths, exist=False)
    library_id = uuid.uuid4()
    outcome = decide.create_library(
        actor,
        cmd,
        library_id,
        owner_exists=owner is not None,
        pattern_problem=patterns,
        paths=facts,
    )
    await carry_out(ctx, outcome)
    return library_id


async def visible_library(
    ctx: Context,
    actor: AuthUser,
    library_id: uuid.UUID,
    permission: str = "library.read",
    *,
    counted: bool = True,
) -> Row[Any]:
    """The library's row if the caller may use it for `permission` (decide.visible); with
    `counted` False, without its asset count (a check, not a DTO)."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_library(conn, library_id, counted=counted)
    accepted(decide.visible(actor, library_state(row), permission))
    assert row is not None
    return row


async def _visible_state(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID, permission: str
) -> decide.LibraryState:
    state = library_state(await visible_library(ctx, actor, library_id, permission, counted=False))
    assert state is not None
    return state


async def update_library(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID, dto: s.UpdateLibraryDto
) -> None:
    """Rename, change import paths or exclusion patterns, on the library as last read."""
    library = await _visible_state(ctx, actor, library_id, "library.update")
    accepted(decide.update_input(library, dto))
    facts = None
    if dto.import_paths is not UNSET:
        owner = await _owner(ctx, library.owner_id)
        if owner is None:
            raise InvalidInput("User not found")
        paths = decide.normalise_paths(dto.import_paths)
        facts = await _path_facts(ctx, owner.external_path, paths, exist=True)
    patterns = None
    if dto.exclusion_patterns is not UNSET and (facts is None or facts.first_problem is None):
        patterns = await off_loop(_pattern_problem, dto.exclusion_patterns)
    outcome = decide.update_library(library, dto, pattern_problem=patterns, paths=facts)
    await carry_out(ctx, outcome)


async def delete_library(ctx: Context, actor: AuthUser, library_id: uuid.UUID) -> None:
    """Start deleting an external library (the scanner finishes it)."""
    library = await _visible_state(ctx, actor, library_id, "library.delete")
    await carry_out(ctx, decide.delete_library(library))


async def validate_library(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID, dto: s.ValidateLibraryDto
) -> list[tuple[str, str | None]]:
    """Each path with why it is unusable (None: usable)."""
    library = await _visible_state(ctx, actor, library_id, "library.update")
    accepted(decide.list_problems("importPaths", dto.import_paths))
    if dto.exclusion_patterns:
        await check_patterns(dto.exclusion_patterns)
    owner = await _owner(ctx, library.owner_id)
    if owner is None:
        raise InvalidInput("User not found")
    accepted(decide.validate_library(owner.external_path))
    upload = str(ctx.settings.upload_path)
    return await off_loop(_validate_paths, dto.import_paths, owner.external_path, upload)


async def request_scan(
    ctx: Context,
    actor: AuthUser,
    library_id: uuid.UUID,
    mode: ev.ScanMode,
    requested_by: str = "user",
    path: str | None = None,
) -> uuid.UUID:
    """Ask for a scan of the library, or of one folder (or file) inside its import paths."""
    library = await _visible_state(ctx, actor, library_id, "library.update")
    accepted(decide.scan_input(library))
    problem = None
    if path is not None:
        owner = await _owner(ctx, library.owner_id)
        if owner is None:
            raise InvalidInput("User not found")
        problem = await off_loop(
            validate_scan_path,
            path,
            list(library.import_paths),
            owner.external_path,
            str(ctx.settings.upload_path),
            LookupBudget(),
        )
    scan_id = uuid.uuid4()
    outcome = decide.request_scan(
        library, scan_id, mode, requested_by=requested_by, path=path, path_problem=problem
    )
    await carry_out(ctx, outcome)
    return scan_id


async def offline_to_remove(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID
) -> tuple[list[decide.OfflineAsset], list[decide.OfflineAsset]]:
    """(kept, removable): the library's offline assets that *remove offline files* would keep
    and remove now (the web app says how many before it asks)."""
    await visible_library(ctx, actor, library_id, "library.update", counted=False)
    async with ctx.engine.connect() as conn:
        rows = await queries.offline_assets(conn, library_id)
    return decide.offline_split(
        [decide.OfflineAsset(r.id, r.offline_reason, r.last_seq) for r in rows]
    )


async def remove_offline(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID
) -> s.RemoveOfflineFilesResponseDto:
    """Remove the library's offline assets whose files are really gone (nothing on disk
    changes); an asset whose file came back meanwhile stays."""
    kept, gone = await offline_to_remove(ctx, actor, library_id)
    await carry_out_each(ctx, decide.remove_offline(library_id, gone))
    reasons = Counter(str(a.offline_reason) for a in kept)
    return s.RemoveOfflineFilesResponseDto(
        removed=len(gone), kept=len(kept), kept_reasons=dict(reasons)
    )
