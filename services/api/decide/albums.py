"""Decisions on albums: only the owner changes an album; members are the owner's assets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from msgspec import UNSET

from services.api import schemas as s
from services.api.decide import Refusal, Write, refuse
from shared import events as ev
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from services.api.auth import AuthUser


@dataclass(frozen=True)
class AlbumState:
    """An album as its read-model row holds it, with those of its members the command asks
    about (all of them for adding and removing, the new thumbnail for an edit)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str
    thumbnail_asset_id: uuid.UUID | None
    last_seq: int
    members: frozenset[uuid.UUID] = frozenset()


def owned(actor: AuthUser, owner_id: uuid.UUID | None, permission: str) -> Refusal | None:
    """Only the owner reads or changes an album (None: no such album): Immich's 400 `Not found
    or no <permission> access` for anyone else (Shoebox does not share albums, so an admin has
    no access either)."""
    if owner_id is None or owner_id != actor.id:
        return refuse(InvalidInput, f"Not found or no {permission} access")
    return None


def create_album(
    actor: AuthUser, dto: s.CreateAlbumDto, album_id: uuid.UUID, addable: set[uuid.UUID]
) -> Write | Refusal:
    """A new album; asset ids the caller may not use (`addable`: theirs, in a live library)
    are left out, as Immich does."""
    if dto.album_users:
        return refuse(InvalidInput, "Shoebox does not share albums: albumUsers must be empty")
    events: list[ev.BaseEvent] = [
        ev.AlbumCreated(
            stream_id=album_id,
            owner_id=actor.id,
            name=dto.album_name,
            description=dto.description or "",
        )
    ]
    members = [a for a in dict.fromkeys(dto.asset_ids) if a in addable]
    if members:
        events.append(ev.AssetsAddedToAlbum(stream_id=album_id, asset_ids=members))
    return Write(tuple(events), 0)


def update_album(album: AlbumState, dto: s.UpdateAlbumDto) -> Write | Refusal | None:
    """Name, description and thumbnail (an asset of the album); `order` and
    `isActivityEnabled` are accepted and kept at their only values (desc, enabled) since no
    event records them. None when nothing changes."""
    thumb = None if dto.album_thumbnail_asset_id is UNSET else dto.album_thumbnail_asset_id
    if thumb is not None and thumb not in album.members:
        return refuse(InvalidInput, "Invalid album thumbnail: the asset is not in the album")
    name = None if dto.album_name is UNSET or dto.album_name == album.name else dto.album_name
    description = None
    if dto.description is not UNSET:
        wanted = dto.description or ""
        description = wanted if wanted != album.description else None
    if thumb == album.thumbnail_asset_id:
        thumb = None
    if name is None and description is None and thumb is None:
        return None
    updated = ev.AlbumUpdated(
        stream_id=album.id, name=name, description=description, thumbnail_asset_id=thumb
    )
    return Write((updated,), album.last_seq)


def delete_album(album: AlbumState) -> Write:
    """The owner deletes the album as last read."""
    return Write((ev.AlbumDeleted(stream_id=album.id),), album.last_seq)


@dataclass(frozen=True)
class MemberChange:
    """Immich's per-id answer, and the write (None: nothing changes)."""

    write: Write | None
    results: list[s.BulkIdResponseDto]


def add_assets(album: AlbumState, ids: list[uuid.UUID], addable: set[uuid.UUID]) -> MemberChange:
    """Each id: success, or duplicate (already in) / no_permission."""
    present = set(album.members)
    results: list[s.BulkIdResponseDto] = []
    added: list[uuid.UUID] = []
    for asset_id in ids:
        if asset_id in present:
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=False, error="duplicate"))
        elif asset_id not in addable:
            results.append(
                s.BulkIdResponseDto(id=str(asset_id), success=False, error="no_permission")
            )
        else:
            present.add(asset_id)
            added.append(asset_id)
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=True))
    event = ev.AssetsAddedToAlbum(stream_id=album.id, asset_ids=added)
    return MemberChange(Write((event,), album.last_seq) if added else None, results)


def remove_assets(album: AlbumState, ids: list[uuid.UUID]) -> MemberChange:
    """Each id: success, or not_found (not in the album)."""
    present = set(album.members)
    results: list[s.BulkIdResponseDto] = []
    removed: list[uuid.UUID] = []
    for asset_id in ids:
        if asset_id in present:
            present.discard(asset_id)
            removed.append(asset_id)
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=True))
        else:
            results.append(s.BulkIdResponseDto(id=str(asset_id), success=False, error="not_found"))
    event = ev.AssetsRemovedFromAlbum(stream_id=album.id, asset_ids=removed)
    return MemberChange(Write((event,), album.last_seq) if removed else None, results)
