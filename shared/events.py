"""Every event Shoebox records: frozen, tagged msgspec Structs, the Event union and codecs.

Rules (see docs/events.md): names are facts in the past tense; a new field gets a default; a field
is never renamed or retyped; a breaking change bumps `v` and adds an upcaster below.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, cast

import msgspec

from shared.metadata import AssetMetadata
from shared.sysconfig import LibraryConfig


def _now() -> datetime:
    return datetime.now(UTC)


class Aggregate(enum.StrEnum):
    """The kinds of aggregate; each names a subject family `events.<aggregate>.<id>`."""

    SERVER = "server"
    USER = "user"
    LIBRARY = "library"
    ASSET = "asset"
    ALBUM = "album"
    SCANS = "scans"
    """A library's scan bookkeeping (`events.scans.<library id>`): scan requests and results,
    the folder index, problems met. Not facts about the library itself, so they never move the
    library's position and a library edit never conflicts with a scan (decision 0022)."""
    DEAD_LETTER = "deadletter"
    """A message a consumer gave up on (`events.deadletter.<id>`, decision 0024): recorded
    once, never guarded."""


class ScanMode(enum.StrEnum):
    """How much of a library a scan re-reads."""

    NEW = "new"
    MODIFIED = "modified"
    FORCE = "force"


class OfflineReason(enum.StrEnum):
    """Why an asset's file cannot be seen."""

    DELETED = "deleted"
    OUTSIDE_IMPORT_PATHS = "outside-import-paths"
    EXCLUDED = "excluded"
    IMPORT_PATH_UNAVAILABLE = "import-path-unavailable"
    OUTSIDE_EXTERNAL_PATH = "outside-external-path"
    NOT_ELIGIBLE = "not-eligible"


LibraryType = Literal["UPLOAD", "EXTERNAL"]
AssetType = Literal["IMAGE", "VIDEO", "AUDIO", "OTHER"]


class BaseEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="event"):
    """The envelope every event starts with."""

    aggregate: ClassVar[Aggregate]

    stream_id: uuid.UUID
    event_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    occurred_at: datetime = msgspec.field(default_factory=_now)
    v: int = 1


# --- server ---------------------------------------------------------------------------------


SERVER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


class ServerInitialized(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The first admin signed up; written with expected sequence 0, so it happens once."""

    aggregate = Aggregate.SERVER
    admin_id: uuid.UUID


class SystemConfigUpdated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An admin saved the server's library configuration (scan schedule, watching)."""

    aggregate = Aggregate.SERVER
    library: LibraryConfig


# --- users ----------------------------------------------------------------------------------


class UserCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user account was created (by admin sign-up or by an admin)."""

    aggregate = Aggregate.USER
    email: str
    name: str
    password_hash: str
    is_admin: bool = False
    should_change_password: bool = False
    storage_label: str | None = None
    quota_size_in_bytes: int | None = None


class UserUpdated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An admin or the user changed profile fields; a None field is unchanged."""

    aggregate = Aggregate.USER
    email: str | None = None
    name: str | None = None
    password_hash: str | None = None
    is_admin: bool | None = None
    should_change_password: bool | None = None
    storage_label: str | None = None
    quota_size_in_bytes: int | None = None


class ExternalPathSet(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An admin granted (or, with None, revoked) the folder a user's import paths must lie in."""

    aggregate = Aggregate.USER
    external_path: str | None


class UserDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user was deleted; they can no longer sign in."""

    aggregate = Aggregate.USER


class SessionCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user logged in; only the SHA-256 of the bearer token is recorded."""

    aggregate = Aggregate.USER
    session_id: uuid.UUID
    token_hash: str


class SessionEnded(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user logged out."""

    aggregate = Aggregate.USER
    session_id: uuid.UUID


class ApiKeyCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user created an API key; only the SHA-256 of the secret is recorded."""

    aggregate = Aggregate.USER
    key_id: uuid.UUID
    name: str
    key_hash: str
    permissions: list[str]


class ApiKeyDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user deleted an API key."""

    aggregate = Aggregate.USER
    key_id: uuid.UUID


# --- libraries ------------------------------------------------------------------------------


class LibraryCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library was created (an upload library with its user, or an external one)."""

    aggregate = Aggregate.LIBRARY
    owner_id: uuid.UUID
    name: str
    type: LibraryType
    import_paths: list[str] = []
    exclusion_patterns: list[str] = []


class LibraryRenamed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library got a new name."""

    aggregate = Aggregate.LIBRARY
    name: str


class ImportPathsChanged(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The folders an external library tracks were replaced."""

    aggregate = Aggregate.LIBRARY
    import_paths: list[str]


class ExclusionPatternsChanged(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The globs that drop files from an external library were replaced."""

    aggregate = Aggregate.LIBRARY
    exclusion_patterns: list[str]


class LibraryScanRequested(BaseEvent, frozen=True, kw_only=True, tag=True):
    """Someone (a user, the nightly job, the watcher) asked for a scan."""

    aggregate = Aggregate.SCANS
    scan_id: uuid.UUID
    mode: ScanMode = ScanMode.NEW
    requested_by: str = "user"
    path: str | None = None
    """Only this folder (or this file's folder) and what lies below it; None: the library."""


class ScanProblemFound(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan met something it could not read (unreadable folder, symlink out, bad name...).

    v2 renamed `problem` to `message`, the word Immich's errors use for what a person reads
    (`upcast_ScanProblemFound_v1_v2`; decision 0023)."""

    aggregate = Aggregate.SCANS
    v: int = 2
    scan_id: uuid.UUID
    path: str
    message: str


class LibraryScanFinished(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan walked every import path; the counters are what it found."""

    aggregate = Aggregate.SCANS
    scan_id: uuid.UUID
    files_seen: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    failed: int = 0
    unavailable_import_paths: list[str] = []


class DirectoryIndexed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan listed a folder whose mtime is `mtime_ns`: while the folder keeps that mtime (and
    the exclusion patterns hash `patterns_hash`), a *new*-mode rescan need not list it again."""

    aggregate = Aggregate.SCANS
    path: str
    mtime_ns: int
    patterns_hash: str
    scan_id: uuid.UUID | None = None


class DirectoryGone(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A folder (and everything below it) that a scan had indexed no longer exists."""

    aggregate = Aggregate.SCANS
    path: str
    scan_id: uuid.UUID | None = None


class ImportPathSeen(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan found an import path usable, on the file system `device` (its `st_dev`): while
    it is, a folder on its parent's device there is a mount point without its drive."""

    aggregate = Aggregate.SCANS
    path: str
    device: int
    scan_id: uuid.UUID | None = None
    real_path: str = ""
    """Where the import path led (through its symlinks): where its assets are, if it goes."""


class LibraryDeletionStarted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library is being deleted; it is hidden at once, its assets go in the background."""

    aggregate = Aggregate.LIBRARY


class LibraryDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A library and all its assets are gone (the files on disk never are)."""

    aggregate = Aggregate.LIBRARY


# --- assets ---------------------------------------------------------------------------------


class FileDiscovered(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan or the watcher found an eligible file that no asset had: a new asset."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID
    owner_id: uuid.UUID
    path: str
    type: AssetType
    file_modified_at: datetime
    file_size: int
    scan_id: uuid.UUID | None = None
    sidecar_mtime_ms: int = 0


class FileChanged(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A known file's mtime changed (or a force scan asked): its metadata must be re-read."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID
    path: str
    file_modified_at: datetime
    file_size: int
    scan_id: uuid.UUID | None = None
    sidecar_mtime_ms: int = 0


class AssetOffline(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The asset's file cannot be seen any more; the asset stays, marked offline."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID
    reason: OfflineReason
    scan_id: uuid.UUID | None = None


class AssetOnline(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An offline asset's file is back."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID
    file_modified_at: datetime | None = None
    file_size: int | None = None
    scan_id: uuid.UUID | None = None


class AssetUploaded(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user uploaded a file into their upload library."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID
    owner_id: uuid.UUID
    path: str
    original_file_name: str
    type: AssetType
    checksum: str
    file_size: int
    file_created_at: datetime
    file_modified_at: datetime
    device_asset_id: str = ""
    device_id: str = ""
    is_favorite: bool = False


class MetadataExtracted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The metadata worker read the file and stored its thumbnails."""

    aggregate = Aggregate.ASSET
    metadata: AssetMetadata
    thumbnail_key: str | None = None
    preview_key: str | None = None
    thumbhash: bytes | None = None
    """Immich's thumbhash of the thumbnail (base64 on the wire); None without a thumbnail."""


class MetadataFailed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """The metadata worker could not read the file, or read its metadata but could not render
    it (then this follows the MetadataExtracted with what it could read); the asset stays listed
    with the reason."""

    aggregate = Aggregate.ASSET
    reason: str
    checksum: str | None = None
    file_size: int | None = None


class AssetRemoved(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An asset left Shoebox: remove-offline (the file is already gone), or a user deleted an
    upload (the api then deletes the uploaded copy it holds). External files are never touched."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID
    reason: str = "removed"


AssetVisibility = Literal["timeline", "archive"]


class AssetUpdated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user changed what they say about an asset (favourite, archived, description, rating);
    a None field is unchanged. The file is never touched. `carried_from` names the asset whose
    details a move carried over (the scanner's moves follower), None for a user's edit."""

    aggregate = Aggregate.ASSET
    is_favorite: bool | None = None
    visibility: AssetVisibility | None = None
    description: str | None = None
    rating: int | None = None
    carried_from: uuid.UUID | None = None


class AssetTrashed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user moved an uploaded asset to the trash: it leaves the timeline, its file stays
    until the trash is emptied. External assets are never trashed."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID


class AssetRestored(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user took a trashed asset back out of the trash."""

    aggregate = Aggregate.ASSET
    library_id: uuid.UUID


# --- albums ---------------------------------------------------------------------------------


class AlbumCreated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A user created an album."""

    aggregate = Aggregate.ALBUM
    owner_id: uuid.UUID
    name: str
    description: str = ""


class AlbumUpdated(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An album's name or description changed; a None field is unchanged."""

    aggregate = Aggregate.ALBUM
    name: str | None = None
    description: str | None = None
    thumbnail_asset_id: uuid.UUID | None = None


class AssetsAddedToAlbum(BaseEvent, frozen=True, kw_only=True, tag=True):
    """Assets were added to an album."""

    aggregate = Aggregate.ALBUM
    asset_ids: list[uuid.UUID]


class AssetsRemovedFromAlbum(BaseEvent, frozen=True, kw_only=True, tag=True):
    """Assets were taken out of an album."""

    aggregate = Aggregate.ALBUM
    asset_ids: list[uuid.UUID]


class AlbumDeleted(BaseEvent, frozen=True, kw_only=True, tag=True):
    """An album was deleted (its assets are not)."""

    aggregate = Aggregate.ALBUM


# --- dead letters -----------------------------------------------------------------------------


class DeliveryFailed(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A consumer gave up on a message: it could not be decoded, or it failed for a reason of its
    own on its last allowed delivery (never an outage). Its id comes from the consumer and the
    message's stream sequence, so replicas that race record it once (decision 0024)."""

    aggregate = Aggregate.DEAD_LETTER
    consumer: str
    stream: str
    subject: str
    stream_seq: int
    deliveries: int
    error: str
    payload: str = ""
    """The message's first bytes as text (undecodable bytes replaced)."""


Event = (
    ServerInitialized
    | SystemConfigUpdated
    | UserCreated
    | UserUpdated
    | ExternalPathSet
    | UserDeleted
    | SessionCreated
    | SessionEnded
    | ApiKeyCreated
    | ApiKeyDeleted
    | LibraryCreated
    | LibraryRenamed
    | ImportPathsChanged
    | ExclusionPatternsChanged
    | LibraryScanRequested
    | ScanProblemFound
    | LibraryScanFinished
    | DirectoryIndexed
    | DirectoryGone
    | ImportPathSeen
    | LibraryDeletionStarted
    | LibraryDeleted
    | FileDiscovered
    | FileChanged
    | AssetOffline
    | AssetOnline
    | AssetUploaded
    | MetadataExtracted
    | MetadataFailed
    | AssetRemoved
    | AssetUpdated
    | AssetTrashed
    | AssetRestored
    | AlbumCreated
    | AlbumUpdated
    | AssetsAddedToAlbum
    | AssetsRemovedFromAlbum
    | AlbumDeleted
    | DeliveryFailed
)

EVENT_TYPES: tuple[type[BaseEvent], ...] = Event.__args__

ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Event)
_RAW_DECODER = msgspec.json.Decoder(dict[str, Any])


def upcast_ScanProblemFound_v1_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v1 called the words a person reads `problem`; v2 calls them `message`."""
    raw = dict(raw)
    raw["message"] = raw.pop("problem", "")
    return raw


# Upcasters: (tag, from_version) -> function(raw dict) -> raw dict of version + 1. A stored
# event is never rewritten: it is upcast each time it is read (STYLE.md, decision 0023).
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("ScanProblemFound", 1): upcast_ScanProblemFound_v1_v2,
}
CURRENT_VERSION: dict[str, int] = {
    t.__name__: next(f.default for f in msgspec.structs.fields(t) if f.name == "v")
    for t in EVENT_TYPES
}
"""Each event type's version: the default of its `v` field."""
_UPCAST = frozenset(tag for tag, _ in UPCASTERS)


def encode(event: BaseEvent) -> bytes:
    """Event -> JSON bytes (its class name in the `event` field)."""
    return ENCODER.encode(event)


def decode(data: bytes) -> Event:
    """JSON bytes -> Event, upcasting older versions first. Raises msgspec.ValidationError.

    The typed decoder reads every current event in one pass; only an event of an older
    version (one that fails to decode as the current shape, or decodes with an older `v`) goes
    through the upcasters, as a dict."""
    try:
        event = cast("Event", _DECODER.decode(data))
    except msgspec.ValidationError:
        if not _UPCAST:
            raise
        return _upcast(data)
    if event.v < CURRENT_VERSION[type(event).__name__]:
        return _upcast(data)
    return event


def _upcast(data: bytes) -> Event:
    raw = _RAW_DECODER.decode(data)
    tag, version = raw.get("event", ""), raw.get("v", 1)
    while (tag, version) in UPCASTERS:
        raw = UPCASTERS[(tag, version)](raw)
        version = raw["v"] = version + 1
    return cast("Event", msgspec.convert(raw, Event))


def subject_parts(event: BaseEvent) -> tuple[str, str, str]:
    """('events', aggregate, id) — join with the namespace to get the subject."""
    return ("events", event.aggregate.value, str(event.stream_id))
