"""Events of assets and of albums."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec

from shared.events.base import Aggregate, AssetType, BaseEvent, OfflineReason
from shared.ids import external_asset_ids
from shared.metadata import AssetMetadata

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


class FolderFile(msgspec.Struct, frozen=True, array_like=True):
    """One file of a FilesDiscovered: its name in the folder, what it is, its mtime (ms since
    the epoch), size and sidecar mtime (0: none). A JSON array on the wire."""

    name: str
    type: AssetType
    mtime_ms: int
    size: int
    sidecar_mtime_ms: int = 0


class FilesDiscovered(BaseEvent, frozen=True, kw_only=True, tag=True):
    """A scan or the watcher found eligible files in one folder that no asset had: each is a
    new asset, `external_asset_id(library_id, folder/name)`. Stored on the folder's subject,
    guarded by the folder's position: a second discovery of the same files by another replica
    is refused there (decision 0030). A big folder is several of these, each after the last."""

    aggregate = Aggregate.FOLDER
    library_id: uuid.UUID
    owner_id: uuid.UUID
    folder: str
    files: list[FolderFile]
    scan_id: uuid.UUID | None = None

    def path_of(self, f: FolderFile) -> str:
        return f"{self.folder.rstrip('/')}/{f.name}"

    def asset_ids(self, paths: list[str] | None = None) -> list[uuid.UUID]:
        """Each file's asset, in one pass (`paths`: path_of each file, when the caller has them)."""
        if paths is None:
            paths = [self.path_of(f) for f in self.files]
        return external_asset_ids(self.library_id, paths)

    def discoveries(self) -> list[FileDiscovered]:
        """Each file as the FileDiscovered of its asset (the shape per-asset consumers read):
        event ids derived from this event's, so a redelivery names the same facts."""
        out = []
        paths = [self.path_of(f) for f in self.files]
        for f, path, asset_id in zip(self.files, paths, self.asset_ids(paths), strict=True):
            out.append(
                FileDiscovered(
                    stream_id=asset_id,
                    event_id=uuid.uuid5(self.event_id, f.name),
                    occurred_at=self.occurred_at,
                    library_id=self.library_id,
                    owner_id=self.owner_id,
                    path=path,
                    type=f.type,
                    file_modified_at=datetime.fromtimestamp(f.mtime_ms / 1000, UTC),
                    file_size=f.size,
                    scan_id=self.scan_id,
                    sidecar_mtime_ms=f.sidecar_mtime_ms,
                )
            )
        return out


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
