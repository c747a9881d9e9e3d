"""Deterministic ids: the one-pass form of a folder's asset ids is the per-path one."""

from __future__ import annotations

import uuid

from shared.ids import external_asset_id, external_asset_ids


def test_a_folders_asset_ids_in_one_pass_are_each_paths_uuid5() -> None:
    library = uuid.uuid4()
    paths = ["/m/a.jpg", "/m/é ü/b.HEIC", "/m/" + "x" * 300, "/"]
    ids = external_asset_ids(library, paths)
    assert ids == [external_asset_id(library, p) for p in paths]
    assert [str(i) for i in ids] == [str(external_asset_id(library, p)) for p in paths]
    assert all(type(i) is uuid.UUID and i.version == 5 for i in ids)
    assert {ids[0]: 1}[external_asset_id(library, paths[0])] == 1  # same hash
    assert ids[0].bytes == external_asset_id(library, paths[0]).bytes
    assert external_asset_ids(library, []) == []
