"""What each event means to Immich's live clients (services/api/live.py change_of, pure)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, datetime

import pytest

from services.api import live
from shared import events as ev
from shared.ids import external_asset_id, folder_id
from shared.metadata import AssetMetadata

LIB = uuid.uuid4()
WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def _discovered(asset: uuid.UUID) -> ev.FileDiscovered:
    return ev.FileDiscovered(
        stream_id=asset,
        library_id=LIB,
        owner_id=uuid.uuid4(),
        path="/p/a.jpg",
        type="IMAGE",
        file_modified_at=WHEN,
        file_size=1,
    )


def _read(asset: uuid.UUID) -> ev.MetadataExtracted:
    meta = AssetMetadata(checksum="0" * 40, file_size=1, file_modified_at=WHEN)
    return ev.MetadataExtracted(stream_id=asset, metadata=meta)


def test_first_reading_of_a_new_asset_is_its_upload_success_and_later_ones_updates() -> None:
    fresh: OrderedDict[uuid.UUID, None] = OrderedDict()
    asset = uuid.uuid4()
    assert live.change_of(_discovered(asset), 1, fresh) is None
    first = live.change_of(_read(asset), 2, fresh)
    again = live.change_of(_read(asset), 3, fresh)
    assert first is not None and first.kind == "on_upload_success" and first.id == asset
    assert again is not None and again.kind == "on_asset_update"
    assert not fresh


def test_each_file_of_a_folders_births_is_fresh_until_first_read() -> None:
    fresh: OrderedDict[uuid.UUID, None] = OrderedDict()
    births = ev.FilesDiscovered(
        stream_id=folder_id(LIB, "/p"),
        library_id=LIB,
        owner_id=uuid.uuid4(),
        folder="/p",
        files=[ev.FolderFile(n, "IMAGE", 1, 1) for n in ("a.jpg", "b.jpg")],
    )
    assert live.change_of(births, 1, fresh) is None
    a, b = (external_asset_id(LIB, f"/p/{n}") for n in ("a.jpg", "b.jpg"))
    first = live.change_of(_read(b), 2, fresh)
    assert first is not None and first.kind == "on_upload_success" and first.id == b
    assert list(fresh) == [a]


def test_removal_is_a_delete_with_its_library_and_offline_an_update() -> None:
    fresh: OrderedDict[uuid.UUID, None] = OrderedDict()
    asset = uuid.uuid4()
    offline = live.change_of(
        ev.AssetOffline(stream_id=asset, library_id=LIB, reason=ev.OfflineReason.DELETED), 4, fresh
    )
    removed = live.change_of(ev.AssetRemoved(stream_id=asset, library_id=LIB), 5, fresh)
    assert offline is not None and offline.kind == "on_asset_update"
    assert removed == live.Change(5, "on_asset_delete", asset, LIB)


def test_fresh_assets_are_bounded_oldest_forgotten_first(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh: OrderedDict[uuid.UUID, None] = OrderedDict()
    ids = [uuid.uuid4() for _ in range(5)]
    monkeypatch.setattr(live, "FRESH_LIMIT", 3)
    for i, asset in enumerate(ids):
        live.change_of(_discovered(asset), i, fresh)
    assert list(fresh) == ids[2:]
