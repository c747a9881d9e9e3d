"""One sample of every event type, with fixed ids: the positions test writes each to its
aggregate, and the golden files (tests/golden/events) are made from them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared import events as ev
from shared.ids import folder_id
from shared.metadata import AssetMetadata
from shared.sysconfig import LibraryConfig

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Refs:
    """The aggregates every sample event is written to, created first."""

    def __init__(self, fixed: bool = False) -> None:
        ids = [uuid.UUID(int=i + 1) if fixed else uuid.uuid4() for i in range(6)]
        self.user, self.library, self.asset, self.album, self.session, self.key = ids


def _file(r: Refs) -> dict[str, Any]:
    return {"stream_id": r.asset, "library_id": r.library, "path": "/m/a.jpg"}


# One sample of every event type, on the aggregate prepared for it. A new event type must be
# added here (the test below fails until it is), so its effect on positions is checked.
SAMPLES: dict[type[ev.BaseEvent], Callable[[Refs], ev.BaseEvent]] = {
    ev.ServerInitialized: lambda r: ev.ServerInitialized(stream_id=ev.SERVER_ID, admin_id=r.user),
    ev.SystemConfigUpdated: lambda r: ev.SystemConfigUpdated(
        stream_id=ev.SERVER_ID, library=LibraryConfig()
    ),
    ev.UserCreated: lambda r: ev.UserCreated(
        stream_id=r.user, email=f"{r.user}@example.com", name="u", password_hash="x"
    ),
    ev.UserUpdated: lambda r: ev.UserUpdated(stream_id=r.user, name="v"),
    ev.ExternalPathSet: lambda r: ev.ExternalPathSet(stream_id=r.user, external_path="/m"),
    ev.SessionCreated: lambda r: ev.SessionCreated(
        stream_id=r.user, session_id=r.session, token_hash=f"t{r.session}"
    ),
    ev.SessionEnded: lambda r: ev.SessionEnded(stream_id=r.user, session_id=r.session),
    ev.ApiKeyCreated: lambda r: ev.ApiKeyCreated(
        stream_id=r.user, key_id=r.key, name="k", key_hash=f"h{r.key}", permissions=["all"]
    ),
    ev.ApiKeyDeleted: lambda r: ev.ApiKeyDeleted(stream_id=r.user, key_id=r.key),
    ev.LibraryCreated: lambda r: ev.LibraryCreated(
        stream_id=r.library, owner_id=r.user, name="l", type="EXTERNAL", import_paths=["/m"]
    ),
    ev.LibraryRenamed: lambda r: ev.LibraryRenamed(stream_id=r.library, name="m"),
    ev.ImportPathsChanged: lambda r: ev.ImportPathsChanged(
        stream_id=r.library, import_paths=["/m", "/n"]
    ),
    ev.ExclusionPatternsChanged: lambda r: ev.ExclusionPatternsChanged(
        stream_id=r.library, exclusion_patterns=["**/Raw/**"]
    ),
    ev.LibraryScanRequested: lambda r: ev.LibraryScanRequested(
        stream_id=r.library, scan_id=r.session
    ),
    ev.ScanProblemFound: lambda r: ev.ScanProblemFound(
        stream_id=r.library, scan_id=r.session, path="/m/x", message="cannot read folder"
    ),
    ev.LibraryScanFinished: lambda r: ev.LibraryScanFinished(
        stream_id=r.library, scan_id=r.session
    ),
    ev.DirectoryIndexed: lambda r: ev.DirectoryIndexed(
        stream_id=r.library, path="/m", mtime_ns=1, patterns_hash="p"
    ),
    ev.DirectoryGone: lambda r: ev.DirectoryGone(stream_id=r.library, path="/m/gone"),
    ev.ImportPathSeen: lambda r: ev.ImportPathSeen(stream_id=r.library, path="/m", device=1),
    ev.FileDiscovered: lambda r: ev.FileDiscovered(
        **_file(r), owner_id=r.user, type="IMAGE", file_modified_at=NOW, file_size=1
    ),
    ev.FilesDiscovered: lambda r: ev.FilesDiscovered(
        stream_id=folder_id(r.library, "/m"),
        library_id=r.library,
        owner_id=r.user,
        folder="/m",
        files=[ev.FolderFile("b.jpg", "IMAGE", 1714564800000, 3)],
    ),
    ev.FileChanged: lambda r: ev.FileChanged(**_file(r), file_modified_at=NOW, file_size=2),
    ev.AssetOffline: lambda r: ev.AssetOffline(
        stream_id=r.asset, library_id=r.library, reason=ev.OfflineReason.DELETED
    ),
    ev.AssetOnline: lambda r: ev.AssetOnline(stream_id=r.asset, library_id=r.library),
    ev.MetadataExtracted: lambda r: ev.MetadataExtracted(
        stream_id=r.asset, metadata=AssetMetadata(checksum="c", file_size=2, file_modified_at=NOW)
    ),
    ev.MetadataFailed: lambda r: ev.MetadataFailed(stream_id=r.asset, reason="broken"),
    ev.AssetUpdated: lambda r: ev.AssetUpdated(
        stream_id=r.asset, is_favorite=True, description="d", rating=4
    ),
    ev.AssetTrashed: lambda r: ev.AssetTrashed(stream_id=r.asset, library_id=r.library),
    ev.AssetRestored: lambda r: ev.AssetRestored(stream_id=r.asset, library_id=r.library),
    ev.AlbumCreated: lambda r: ev.AlbumCreated(stream_id=r.album, owner_id=r.user, name="a"),
    ev.AlbumUpdated: lambda r: ev.AlbumUpdated(stream_id=r.album, name="b"),
    ev.AssetsAddedToAlbum: lambda r: ev.AssetsAddedToAlbum(stream_id=r.album, asset_ids=[r.asset]),
    ev.AssetsRemovedFromAlbum: lambda r: ev.AssetsRemovedFromAlbum(
        stream_id=r.album, asset_ids=[r.asset]
    ),
    # The ends of lives last: each aggregate's row is gone or marked after them.
    ev.AssetUploaded: lambda r: ev.AssetUploaded(
        stream_id=uuid.uuid5(r.asset, "upload"),
        library_id=r.library,
        owner_id=r.user,
        path="/up/b.jpg",
        original_file_name="b.jpg",
        type="IMAGE",
        checksum="0" * 40,
        file_size=1,
        file_created_at=NOW,
        file_modified_at=NOW,
    ),
    ev.AssetRemoved: lambda r: ev.AssetRemoved(stream_id=r.asset, library_id=r.library),
    ev.AlbumDeleted: lambda r: ev.AlbumDeleted(stream_id=r.album),
    ev.LibraryDeletionStarted: lambda r: ev.LibraryDeletionStarted(stream_id=r.library),
    ev.LibraryDeleted: lambda r: ev.LibraryDeleted(stream_id=r.library),
    ev.UserDeleted: lambda r: ev.UserDeleted(stream_id=r.user),
    ev.DeliveryFailed: lambda r: ev.DeliveryFailed(
        stream_id=uuid.uuid5(r.asset, "dead"),
        consumer="metadata",
        stream="EVENTS",
        subject=f"events.asset.{r.asset}",
        stream_seq=7,
        deliveries=1,
        error="undecodable: JSON is malformed",
        payload="{not json",
    ),
}
