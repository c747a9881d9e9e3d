"""Every event Shoebox records: frozen, tagged msgspec Structs, the Event union and codecs.

The events are in base.py (the envelope), users.py, libraries.py and assets.py; this module
gathers them. Rules (see docs/events.md): names are facts in the past tense; a new field gets a
default; a field is never renamed or retyped; a breaking change bumps `v` and adds an upcaster
below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import msgspec

from shared.events.assets import (
    AlbumCreated,
    AlbumDeleted,
    AlbumUpdated,
    AssetOffline,
    AssetOnline,
    AssetRemoved,
    AssetRestored,
    AssetsAddedToAlbum,
    AssetsRemovedFromAlbum,
    AssetTrashed,
    AssetUpdated,
    AssetUploaded,
    FileChanged,
    FileDiscovered,
    FilesDiscovered,
    FolderFile,
    MetadataExtracted,
    MetadataFailed,
)
from shared.events.base import (
    Aggregate,
    AssetType,
    BaseEvent,
    LibraryType,
    OfflineReason,
    ScanMode,
)
from shared.events.deadletters import DeliveryFailed
from shared.events.libraries import (
    DirectoryGone,
    DirectoryIndexed,
    ExclusionPatternsChanged,
    ImportPathsChanged,
    ImportPathSeen,
    LibraryCreated,
    LibraryDeleted,
    LibraryDeletionStarted,
    LibraryRenamed,
    LibraryScanFinished,
    LibraryScanRequested,
    ScanProblemFound,
)
from shared.events.users import (
    SERVER_ID,
    ApiKeyCreated,
    ApiKeyDeleted,
    ExternalPathSet,
    ServerInitialized,
    SessionCreated,
    SessionEnded,
    SystemConfigUpdated,
    UserCreated,
    UserDeleted,
    UserUpdated,
)

__all__ = [
    "CURRENT_VERSION",
    "ENCODER",
    "EVENT_TYPES",
    "SERVER_ID",
    "UPCASTERS",
    "Aggregate",
    "AlbumCreated",
    "AlbumDeleted",
    "AlbumUpdated",
    "ApiKeyCreated",
    "ApiKeyDeleted",
    "AssetOffline",
    "AssetOnline",
    "AssetRemoved",
    "AssetRestored",
    "AssetTrashed",
    "AssetType",
    "AssetUpdated",
    "AssetUploaded",
    "AssetVisibility",
    "AssetsAddedToAlbum",
    "AssetsRemovedFromAlbum",
    "BaseEvent",
    "DeliveryFailed",
    "DirectoryGone",
    "DirectoryIndexed",
    "Event",
    "ExclusionPatternsChanged",
    "ExternalPathSet",
    "FileChanged",
    "FileDiscovered",
    "FilesDiscovered",
    "FolderFile",
    "ImportPathSeen",
    "ImportPathsChanged",
    "LibraryCreated",
    "LibraryDeleted",
    "LibraryDeletionStarted",
    "LibraryRenamed",
    "LibraryScanFinished",
    "LibraryScanRequested",
    "LibraryType",
    "MetadataExtracted",
    "MetadataFailed",
    "OfflineReason",
    "ScanMode",
    "ScanProblemFound",
    "ServerInitialized",
    "SessionCreated",
    "SessionEnded",
    "SystemConfigUpdated",
    "UserCreated",
    "UserDeleted",
    "UserUpdated",
    "decode",
    "encode",
    "subject_parts",
]

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
    | FilesDiscovered
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
