"""Decisions on albums and assets: plain values in, writes or a refusal out."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import msgspec

from services.api import schemas as s
from services.api.auth import AuthUser
from services.api.decide import Refusal, Write, albums, assets
from shared import events as ev
from shared.errors import InvalidInput
from shared.ids import upload_asset_id

ADA = AuthUser(id=uuid.UUID(int=1), email="a@example.com", name="Ada", is_admin=False)
BEA = AuthUser(id=uuid.UUID(int=2), email="b@example.com", name="Bea", is_admin=False)
ADMIN = AuthUser(id=uuid.UUID(int=3), email="r@example.com", name="Root", is_admin=True)
ALBUM = uuid.UUID(int=10)
A1, A2, A3 = (uuid.UUID(int=n) for n in (21, 22, 23))
LIBRARY = uuid.UUID(int=30)
SHA1 = "a" * 40


def _album() -> albums.AlbumState:
    return albums.AlbumState(ALBUM, ADA.id, "Trip", "", None, 9, frozenset({A1}))


class TestNoTwoUploadsShareASha1:
    def test_the_existing_asset_is_the_answer_as_a_duplicate(self) -> None:
        assert assets.upload(LIBRARY, SHA1, A1) == assets.Duplicate(A1)

    def test_new_bytes_get_the_id_of_their_library_and_sha1(self) -> None:
        assert assets.upload(LIBRARY, SHA1, None) == upload_asset_id(LIBRARY, SHA1)
        assert assets.upload(LIBRARY, SHA1, None) != assets.upload(LIBRARY, "b" * 40, None)

    def test_the_bulk_check_rejects_known_bytes_and_says_if_they_are_trashed(self) -> None:
        answer = assets.bulk_upload_check([("x", SHA1), ("y", "b" * 40)], {SHA1: A1}, {A1})
        rejected, accepted = answer.results
        assert (rejected.action, rejected.reason, rejected.asset_id) == (
            "reject",
            "duplicate",
            str(A1),
        )
        assert rejected.is_trashed is True
        assert (accepted.id, accepted.action) == ("y", "accept")


class TestSomeoneElsesAlbum:
    def test_only_the_owner_edits_an_album_admins_included(self) -> None:
        for other in (BEA, ADMIN):
            assert albums.owned(other, ADA.id, "album.update") == Refusal(
                InvalidInput, "Not found or no album.update access"
            )
        assert albums.owned(ADA, ADA.id, "album.update") is None
        assert albums.owned(ADA, None, "album.read") is not None

    def test_only_the_callers_assets_are_added(self) -> None:
        change = albums.add_assets(_album(), [A1, A2, A3], addable={A2})
        assert [(r.id, r.success, r.error) for r in change.results] == [
            (str(A1), False, "duplicate"),
            (str(A2), True, msgspec.UNSET),
            (str(A3), False, "no_permission"),
        ]
        assert change.write is not None and change.write.expected == 9
        (added,) = change.write.events
        assert isinstance(added, ev.AssetsAddedToAlbum) and added.asset_ids == [A2]

    def test_a_create_leaves_out_assets_the_caller_may_not_use(self) -> None:
        write = albums.create_album(
            ADA, s.CreateAlbumDto(album_name="Trip", asset_ids=[A2, A3, A2]), ALBUM, {A2}
        )
        assert isinstance(write, Write) and write.expected == 0
        created, added = write.events
        assert isinstance(created, ev.AlbumCreated) and created.owner_id == ADA.id
        assert isinstance(added, ev.AssetsAddedToAlbum) and added.asset_ids == [A2]


def test_an_album_thumbnail_must_be_in_the_album() -> None:
    assert albums.update_album(_album(), s.UpdateAlbumDto(album_thumbnail_asset_id=A2)) == Refusal(
        InvalidInput, "Invalid album thumbnail: the asset is not in the album"
    )
    assert albums.update_album(_album(), s.UpdateAlbumDto(album_name="Trip")) is None


def test_an_external_asset_is_never_deleted() -> None:
    upload = SimpleNamespace(id=A1, library_id=LIBRARY, library_type="UPLOAD", deleted_at=None)
    external = SimpleNamespace(id=A2, library_id=LIBRARY, library_type="EXTERNAL", deleted_at=None)
    assert assets.trash([upload, external]) == Refusal(InvalidInput, assets.EXTERNAL_DELETE_REFUSED)
    (write,) = assets.trash([upload])  # type: ignore[misc]
    assert isinstance(write.events[0], ev.AssetTrashed)


def test_someone_elses_asset_refuses_the_whole_request() -> None:
    mine = SimpleNamespace(id=A1, owner_id=ADA.id)
    theirs = SimpleNamespace(id=A2, owner_id=BEA.id)
    rows = {A1: mine, A2: theirs}
    assert assets.owned(ADA, [A1, A2], rows, "asset.update") == Refusal(
        InvalidInput, "Not found or no asset.update access"
    )
    assert assets.owned(ADA, [A1, A1], rows, "asset.update") == [mine]
