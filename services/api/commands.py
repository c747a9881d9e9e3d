"""Commands: check a request against the read models, then record events (the API's only writes).

Each command publishes its events with JetStream's expected-last-subject-sequence (the
aggregate's `last_seq` in its read model, 0 for a new aggregate), then waits until the projector
has applied them, so the caller reads its own write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from msgspec import UNSET

from services.api import queries, rules
from services.api import schemas as s
from services.api.auth import AuthUser, hash_password, new_secret, token_hash, verify_password
from services.api.validation import PATH_LIST_RULES
from shared import events as ev
from shared import sysconfig
from shared.bus import WrongExpectedSequence
from shared.errors import Conflict, Forbidden, InvalidFields, InvalidInput, Unauthorized
from shared.globs import DEFAULT_EXCLUSION_PATTERNS, validate_patterns
from shared.paths import (
    LookupBudget,
    check_import_path_shape,
    strip_trailing_slash,
    validate_external_path,
    validate_import_path,
    validate_scan_path,
)

if TYPE_CHECKING:
    from services.api.context import Context

log = logging.getLogger(__name__)

# Checks that touch the file system (a path on a hung mount blocks in lstat) or burn CPU
# (compiling patterns) run here, off the event loop: two at a time, so that a flood of them
# waits its turn instead of taking every thread the API has. Threads start on first use.
_BLOCKING_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="api-checks")
_T = TypeVar("_T")


async def _off_loop(fn: Callable[..., _T], *args: object) -> _T:
    return await asyncio.get_running_loop().run_in_executor(
        _BLOCKING_CHECKS, functools.partial(fn, *args)
    )


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


async def publish_chain(ctx: Context, events: list[ev.BaseEvent], expected: int | None) -> int:
    """Publish events of one aggregate in order, each expecting the previous one's sequence."""
    seq = 0
    for event in events:
        try:
            seq = await ctx.bus.publish(event, expected_last_seq=expected)
        except WrongExpectedSequence as e:
            raise Conflict("The item was changed by someone else at the same time; retry") from e
        expected = seq if expected is not None else None
    return seq


# --- users ----------------------------------------------------------------------------------


def _check_user_fields(email: str | None, password: str | None, name: str | None) -> None:
    problems = []
    if email is not None and not _EMAIL.match(email):
        problems.append("email must be an email")
    if password is not None and not password:
        problems.append("password should not be empty")
    if name is not None and not name.strip():
        problems.append("name should not be empty")
    if problems:
        raise InvalidFields(problems)


async def create_user(
    ctx: Context,
    *,
    email: str,
    password: str,
    name: str,
    is_admin: bool = False,
    should_change_password: bool = False,
    storage_label: str | None = None,
    quota: int | None = None,
    external_path: str | None = None,
) -> uuid.UUID:
    """A user and their upload library, created together."""
    _check_user_fields(email, password, name)
    if external_path is not None:
        external_path = strip_trailing_slash(external_path)
    if external_path is not None and (msg := validate_external_path(external_path)):
        raise InvalidInput(msg)
    async with ctx.engine.connect() as conn:
        if await queries.get_user_by_email(conn, email):
            raise InvalidInput("User exists")
    user_id = uuid.uuid4()
    events: list[ev.BaseEvent] = [
        ev.UserCreated(
            stream_id=user_id,
            email=email,
            name=name,
            password_hash=hash_password(password),
            is_admin=is_admin,
            should_change_password=should_change_password,
            storage_label=storage_label,
            quota_size_in_bytes=quota,
        )
    ]
    if external_path is not None:
        events.append(ev.ExternalPathSet(stream_id=user_id, external_path=external_path))
    await publish_chain(ctx, events, expected=0)
    seq = await publish_chain(ctx, [rules.upload_library(user_id)], expected=0)
    await ctx.settle(seq)
    return user_id


async def admin_sign_up(ctx: Context, dto: s.SignUpDto) -> uuid.UUID:
    """The first user becomes the admin (rules.decide_admin_sign_up); a half-finished sign-up
    is completed by the next attempt, a finished one refuses it."""
    _check_user_fields(dto.email, dto.password, dto.name)
    async with ctx.engine.connect() as conn:
        admin_id, admin_exists, library_exists = await queries.sign_up_state(conn)
    plan = rules.decide_admin_sign_up(
        rules.SignUpState(admin_id, admin_exists, library_exists),
        email=dto.email,
        name=dto.name,
        password_hash=hash_password(dto.password),
        new_id=uuid.uuid4(),
    )
    seq = 0
    for event in plan.steps:
        try:
            seq = await ctx.bus.publish(event, expected_last_seq=0)
        except WrongExpectedSequence as e:
            if isinstance(event, ev.ServerInitialized):
                raise InvalidInput("The server already has an admin") from e
            # A racing attempt created this aggregate first: the step is done; wait for it.
            last, _ = await ctx.bus.last_event(event.aggregate.value, event.stream_id)
            seq = max(seq, last)
    if seq:
        await ctx.settle(seq)
    return plan.admin_id


async def login(ctx: Context, user_id: uuid.UUID) -> str:
    """Open a session; returns the bearer token (only its hash is recorded)."""
    secret = new_secret()
    seq = await ctx.bus.publish(
        ev.SessionCreated(stream_id=user_id, session_id=uuid.uuid4(), token_hash=token_hash(secret))
    )
    await ctx.settle(seq)
    return secret


async def password_login(ctx: Context, email: str, password: str) -> tuple[Any, str]:
    """Check a user's password and open a session: (the user's row, the session's token)."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_user_by_email(conn, email)
    if row is None or not verify_password(row.password_hash, password):
        raise Unauthorized("Incorrect email or password")
    return row, await login(ctx, row.id)


async def logout(ctx: Context, user: AuthUser) -> None:
    if user.session_id is None:
        return
    await ctx.settle(
        await ctx.bus.publish(ev.SessionEnded(stream_id=user.id, session_id=user.session_id))
    )


async def create_api_key(
    ctx: Context, user: AuthUser, name: str, permissions: list[str]
) -> tuple[str, uuid.UUID]:
    if not permissions:
        raise InvalidInput("permissions should not be empty")
    if not user.granted(permissions):  # a key cannot make a stronger key (Immich: 400)
        raise InvalidInput("Cannot grant permissions you do not have")
    secret = new_secret()
    key_id = uuid.uuid4()
    await ctx.settle(
        await ctx.bus.publish(
            ev.ApiKeyCreated(
                stream_id=user.id,
                key_id=key_id,
                name=name or "API Key",
                key_hash=token_hash(secret),
                permissions=list(permissions),
            )
        )
    )
    return secret, key_id


async def delete_api_key(ctx: Context, user: AuthUser, key_id: uuid.UUID) -> None:
    await ctx.settle(await ctx.bus.publish(ev.ApiKeyDeleted(stream_id=user.id, key_id=key_id)))


async def update_user(
    ctx: Context,
    user_id: uuid.UUID,
    dto: s.UserAdminUpdateDto | s.UserUpdateMeDto,
    *,
    by_admin: bool,
) -> None:
    """Apply a partial update; `externalPath` only from an admin."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_user(conn, user_id)
        if row is None:
            raise InvalidInput("User not found")
        email = None if dto.email is UNSET else dto.email
        if email is not None:
            other = await queries.get_user_by_email(conn, email)
            if other is not None and other.id != user_id:
                raise Conflict("Email already in use by another account")
    _check_user_fields(
        email,
        None if dto.password is UNSET else dto.password,
        None if dto.name is UNSET else dto.name,
    )
    fields: dict[str, object] = {}
    if email is not None:
        fields["email"] = email
    if dto.name is not UNSET:
        fields["name"] = dto.name
    if dto.password is not UNSET:
        fields["password_hash"] = hash_password(dto.password)
    events: list[ev.BaseEvent] = []
    if hasattr(dto, "external_path") and dto.external_path is not UNSET:
        if not by_admin:
            raise Forbidden("Only an admin can set a user's external path")
        path = None if dto.external_path is None else strip_trailing_slash(dto.external_path)
        if path is not None and (msg := validate_external_path(path)):
            raise InvalidInput(msg)
        events.append(ev.ExternalPathSet(stream_id=user_id, external_path=path))
    for attr in ("is_admin", "should_change_password", "storage_label", "quota_size_in_bytes"):
        value = getattr(dto, attr, UNSET)
        if value is not UNSET:
            if not by_admin:
                raise Forbidden(f"Only an admin can change {attr}")
            fields[attr] = value
    if fields:
        events.insert(0, ev.UserUpdated(stream_id=user_id, **fields))  # type: ignore[arg-type]
    if events:
        await ctx.settle(await publish_chain(ctx, events, expected=row.last_seq))


async def delete_user(ctx: Context, actor: AuthUser, user_id: uuid.UUID) -> None:
    if actor.id == user_id:
        raise InvalidInput("Cannot delete your own account")
    async with ctx.engine.connect() as conn:
        row = await queries.get_user(conn, user_id)
    if row is None:
        raise InvalidInput("User not found")
    await ctx.settle(
        await publish_chain(ctx, [ev.UserDeleted(stream_id=user_id)], expected=row.last_seq)
    )


# --- libraries ------------------------------------------------------------------------------


def _check_list(name: str, values: list[str]) -> None:
    """Immich's DTO rules on a list (the API checked them at its edge; the web app's forms
    come here): a 400 with the list of messages."""
    problems = [m for rule in PATH_LIST_RULES if (m := rule.check(name, values)) is not None]
    if problems:
        raise InvalidFields(problems)


def _check_patterns(patterns: list[str]) -> None:
    """Blocking (patterns are translated and compiled)."""
    _check_list("exclusionPatterns", patterns)
    refused = validate_patterns(patterns)
    if refused is not None:
        pattern, msg = refused
        raise InvalidInput(f"Invalid exclusion pattern {pattern!r}: {msg}")


async def check_patterns(patterns: list[str]) -> None:
    """Refuse patterns that are malformed or could make matching slow (off the event loop)."""
    await _off_loop(_check_patterns, patterns)


def _first_bad_path(
    paths: list[str], external_path: str | None, upload: str, exist: bool
) -> str | None:
    """Blocking: the message for the first unusable path (one lookup budget for them all)."""
    check = validate_import_path if exist else check_import_path_shape
    budget = LookupBudget()
    for path in paths:
        if msg := check(path, external_path, upload, budget=budget):
            return f"Invalid import path: {msg}"
    return None


def _validate_paths(
    paths: list[str], external_path: str | None, upload: str
) -> list[tuple[str, str | None]]:
    """Blocking: each path with why it is unusable; one lookup budget for them all."""
    budget = LookupBudget()
    return [(p, validate_import_path(p, external_path, upload, budget=budget)) for p in paths]


async def _external_path_of(ctx: Context, owner_id: uuid.UUID) -> str | None:
    async with ctx.engine.connect() as conn:
        row = await queries.get_user(conn, owner_id)
    if row is None:
        raise InvalidInput("User not found")
    return row.external_path  # type: ignore[no-any-return]


async def create_library(ctx: Context, actor: AuthUser, dto: s.CreateLibraryDto) -> uuid.UUID:
    """An external library; an admin may create one for anyone, a user only for themself. The
    owner defaults to the caller (clients of Immich before v1.99 leave it out)."""
    owner_id = actor.id if dto.owner_id is UNSET else dto.owner_id
    if not actor.is_admin and owner_id != actor.id:
        raise Forbidden("You can only create libraries for yourself")
    name = "New External Library" if dto.name is UNSET else dto.name
    if not name.strip():
        raise InvalidFields(["name should not be empty"])
    paths = [] if dto.import_paths is UNSET else normalise_paths(dto.import_paths)
    patterns = (
        list(DEFAULT_EXCLUSION_PATTERNS)
        if dto.exclusion_patterns is UNSET
        else (dto.exclusion_patterns)
    )
    _check_list("importPaths", paths)
    await check_patterns(patterns)
    external_path = await _external_path_of(ctx, owner_id)
    if external_path is None and not actor.is_admin:
        raise Forbidden("No external path is set for this user; ask an admin to set one")
    upload = str(ctx.settings.upload_path)
    if msg := await _off_loop(_first_bad_path, paths, external_path, upload, False):
        raise InvalidInput(msg)
    library_id = uuid.uuid4()
    await ctx.settle(
        await publish_chain(
            ctx,
            [
                ev.LibraryCreated(
                    stream_id=library_id,
                    owner_id=owner_id,
                    name=name,
                    type="EXTERNAL",
                    import_paths=paths,
                    exclusion_patterns=patterns,
                )
            ],
            expected=0,
        )
    )
    return library_id


async def visible_library(  # type: ignore[no-untyped-def]
    ctx: Context, actor: AuthUser, library_id: uuid.UUID, permission: str = "library.read"
):
    """The library row if the caller may use it for `permission`. As Immich's access checks:
    a user's request for a library that is not theirs (or does not exist) answers 400 `Not
    found or no <permission> access`; an admin's for one that does not exist, 400 `Library not
    found`."""
    async with ctx.engine.connect() as conn:
        row = await queries.get_library(conn, library_id)
    if not actor.is_admin and (row is None or row.owner_id != actor.id):
        raise InvalidInput(f"Not found or no {permission} access")
    if row is None:
        raise InvalidInput("Library not found")
    return row


def normalise_paths(paths: list[str]) -> list[str]:
    """Import paths as recorded: a trailing slash dropped (`/photos/` is `/photos`), as Immich
    normalises them; anything else is validated as given."""
    return [strip_trailing_slash(p) for p in paths]


async def update_library(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID, dto: s.UpdateLibraryDto
) -> None:
    row = await visible_library(ctx, actor, library_id, "library.update")
    events: list[ev.BaseEvent] = []
    if dto.name is not UNSET:
        if not dto.name.strip():
            raise InvalidFields(["name should not be empty"])
        if dto.name != row.name:
            events.append(ev.LibraryRenamed(stream_id=library_id, name=dto.name))
    if dto.import_paths is not UNSET:
        if row.type == "UPLOAD" and dto.import_paths:
            raise InvalidInput("Upload libraries cannot have import paths")
        paths = normalise_paths(dto.import_paths)
        _check_list("importPaths", paths)
        external_path = await _external_path_of(ctx, row.owner_id)
        upload = str(ctx.settings.upload_path)
        if msg := await _off_loop(_first_bad_path, paths, external_path, upload, True):
            raise InvalidInput(msg)
        if paths != list(row.import_paths):
            events.append(ev.ImportPathsChanged(stream_id=library_id, import_paths=paths))
    if dto.exclusion_patterns is not UNSET:
        if row.type == "UPLOAD" and dto.exclusion_patterns:
            raise InvalidInput("Upload libraries cannot have exclusion patterns")
        await check_patterns(dto.exclusion_patterns)
        if list(dto.exclusion_patterns) != list(row.exclusion_patterns):
            events.append(
                ev.ExclusionPatternsChanged(
                    stream_id=library_id, exclusion_patterns=dto.exclusion_patterns
                )
            )
    if events:
        await ctx.settle(await publish_chain(ctx, events, expected=row.last_seq))


async def delete_library(ctx: Context, actor: AuthUser, library_id: uuid.UUID) -> None:
    row = await visible_library(ctx, actor, library_id, "library.delete")
    if row.type == "UPLOAD":
        raise InvalidInput("Cannot delete an upload library: every user keeps theirs")
    await ctx.settle(
        await publish_chain(
            ctx, [ev.LibraryDeletionStarted(stream_id=library_id)], expected=row.last_seq
        )
    )


async def validate_library(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID, dto: s.ValidateLibraryDto
) -> list[tuple[str, str | None]]:
    row = await visible_library(ctx, actor, library_id, "library.update")
    _check_list("importPaths", dto.import_paths)
    if dto.exclusion_patterns:
        await check_patterns(dto.exclusion_patterns)
    external_path = await _external_path_of(ctx, row.owner_id)
    if external_path is None:
        # Immich before v1.99, for an owner an admin gave no external path.
        raise InvalidInput("User has no external path set")
    upload = str(ctx.settings.upload_path)
    return await _off_loop(_validate_paths, dto.import_paths, external_path, upload)


async def request_scan(
    ctx: Context,
    actor: AuthUser,
    library_id: uuid.UUID,
    mode: ev.ScanMode,
    requested_by: str = "user",
    path: str | None = None,
) -> uuid.UUID:
    """Ask for a scan of the library, or of one folder (or file) inside its import paths."""
    row = await visible_library(ctx, actor, library_id, "library.update")
    if row.type == "UPLOAD":
        raise InvalidInput("Can only refresh external libraries")
    if path is not None:
        external_path = await _external_path_of(ctx, row.owner_id)
        message = await _off_loop(
            validate_scan_path,
            path,
            list(row.import_paths),
            external_path,
            str(ctx.settings.upload_path),
            LookupBudget(),
        )
        if message is not None:
            raise InvalidInput(f"Invalid path: {message}")
    scan_id = uuid.uuid4()
    await ctx.settle(
        await ctx.bus.publish(
            ev.LibraryScanRequested(
                stream_id=library_id,
                scan_id=scan_id,
                mode=mode,
                requested_by=requested_by,
                path=path,
            )
        )
    )
    return scan_id


async def update_system_config(ctx: Context, config: sysconfig.LibraryConfig) -> None:
    """Record the server's library configuration (admins only, checked by the route)."""
    errors = sysconfig.problems(config)
    if errors:
        raise InvalidInput("; ".join(errors))
    event = ev.SystemConfigUpdated(stream_id=ev.SERVER_ID, library=config)
    await ctx.settle(await ctx.bus.publish(event))


async def remove_offline(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID
) -> s.RemoveOfflineFilesResponseDto:
    """Remove the library's offline assets whose files are really gone (nothing on disk
    changes). Assets of an unavailable import path are kept: a drive that is not mounted is
    not a deletion, and they come back, in their albums, when it is.

    Each removal expects the asset's last sequence, so an asset whose file came back in the
    meantime (AssetOnline) is not removed."""
    kept, gone = await offline_to_remove(ctx, actor, library_id)
    if gone:
        last, _conflicts = await ctx.bus.publish_many(
            (
                ev.AssetRemoved(stream_id=r.id, library_id=library_id, reason="offline-removed"),
                r.last_seq,
            )
            for r in gone
        )
        if last:
            await ctx.settle(last)
    reasons = Counter(r.offline_reason for r in kept)
    return s.RemoveOfflineFilesResponseDto(
        removed=len(gone), kept=len(kept), kept_reasons=dict(reasons)
    )


async def offline_to_remove(
    ctx: Context, actor: AuthUser, library_id: uuid.UUID
) -> tuple[list[Any], list[Any]]:
    """(kept, removable): the library's offline assets that *remove offline files* would keep
    and remove now (the web app says how many before it asks)."""
    await visible_library(ctx, actor, library_id, "library.update")
    async with ctx.engine.connect() as conn:
        rows = await queries.offline_assets(conn, library_id)
    kept = [r for r in rows if r.offline_reason in KEPT_OFFLINE]
    gone = [r for r in rows if r.offline_reason not in KEPT_OFFLINE]
    return kept, gone


KEPT_OFFLINE = frozenset({ev.OfflineReason.IMPORT_PATH_UNAVAILABLE.value})
"""Offline reasons that *remove offline files* leaves alone: the file may well be there."""
