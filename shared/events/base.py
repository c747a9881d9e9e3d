"""The envelope of every event and the enums events share."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import ClassVar, Literal

import msgspec


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
    FOLDER = "folder"
    """A folder of an external library (`events.folder.<folder id>`, shared/ids.folder_id): the
    births of its files, many to an event, guarded by the folder's position (decision 0030)."""
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
