"""Projections of albums and their members."""

from __future__ import annotations

from sqlalchemy import text

from services.projector.projections.base import Increment, Op, Projection
from shared import events as ev

_ALBUM_CREATED = text(
    "INSERT INTO albums (id, owner_id, name, description, thumbnail_asset_id, created_at, "
    "updated_at, last_seq) VALUES (:id, :owner_id, :name, :description, NULL, :at, :at, :seq) "
    "ON CONFLICT (id) DO NOTHING"
)


def apply_album_created(e: ev.AlbumCreated, seq: int) -> list[Op | Increment]:
    return [
        (
            _ALBUM_CREATED,
            {
                "id": e.stream_id,
                "owner_id": e.owner_id,
                "name": e.name,
                "description": e.description,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


_ALBUM_UPDATED = text(
    "UPDATE albums SET name = coalesce(:name, name), "
    "description = coalesce(:description, description), "
    "thumbnail_asset_id = coalesce(:thumb, thumbnail_asset_id), updated_at = :at, "
    "last_seq = :seq WHERE id = :id"
)


def apply_album_updated(e: ev.AlbumUpdated, seq: int) -> list[Op | Increment]:
    return [
        (
            _ALBUM_UPDATED,
            {
                "id": e.stream_id,
                "name": e.name,
                "description": e.description,
                "thumb": e.thumbnail_asset_id,
                "at": e.occurred_at,
                "seq": seq,
            },
        )
    ]


# Either side may be gone by the time the event is applied (an album deleted while the scanner
# carried a move into it, an asset removed while a user added it): then there is nothing to add.
_ALBUM_ADD = text(
    "INSERT INTO album_assets (album_id, asset_id, added_at) SELECT :album_id, :asset_id, :at "
    "WHERE EXISTS (SELECT 1 FROM assets WHERE id = :asset_id) "
    "AND EXISTS (SELECT 1 FROM albums WHERE id = :album_id) ON CONFLICT DO NOTHING"
)
_ALBUM_TOUCH = text("UPDATE albums SET updated_at = :at, last_seq = :seq WHERE id = :id")


def apply_assets_added_to_album(e: ev.AssetsAddedToAlbum, seq: int) -> list[Op | Increment]:
    ops: list[Op] = [
        (_ALBUM_ADD, {"album_id": e.stream_id, "asset_id": a, "at": e.occurred_at})
        for a in e.asset_ids
    ]
    return [*ops, (_ALBUM_TOUCH, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_ALBUM_REMOVE = text("DELETE FROM album_assets WHERE album_id = :album_id AND asset_id = :asset_id")


def apply_assets_removed_from_album(e: ev.AssetsRemovedFromAlbum, seq: int) -> list[Op | Increment]:
    ops: list[Op] = [(_ALBUM_REMOVE, {"album_id": e.stream_id, "asset_id": a}) for a in e.asset_ids]
    return [*ops, (_ALBUM_TOUCH, {"id": e.stream_id, "at": e.occurred_at, "seq": seq})]


_ALBUM_DELETED = text("DELETE FROM albums WHERE id = :id")


def apply_album_deleted(e: ev.AlbumDeleted, seq: int) -> list[Op | Increment]:
    return [(_ALBUM_DELETED, {"id": e.stream_id})]


PROJECTIONS: dict[type[ev.BaseEvent], Projection] = {
    ev.AlbumCreated: apply_album_created,
    ev.AlbumUpdated: apply_album_updated,
    ev.AssetsAddedToAlbum: apply_assets_added_to_album,
    ev.AssetsRemovedFromAlbum: apply_assets_removed_from_album,
    ev.AlbumDeleted: apply_album_deleted,
}

# Membership rows span an album and an asset: everything planned before them runs first.
BARRIERS = frozenset({_ALBUM_ADD, _ALBUM_REMOVE})
