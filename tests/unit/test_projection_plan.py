"""The projector's batching keeps the order of operations on each row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.projector import projections as p
from shared import events as ev

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _flat(plan: list[tuple[object, list[dict[str, object]]]]) -> list[tuple[object, object]]:
    return [
        (stmt, params.get("user_id", params.get("id"))) for stmt, rows in plan for params in rows
    ]


def test_operations_on_one_row_keep_their_order() -> None:
    user, session = uuid.uuid4(), uuid.uuid4()
    events: list[tuple[int, ev.BaseEvent]] = [
        (1, ev.SessionCreated(stream_id=user, session_id=session, token_hash="h")),
        (2, ev.SessionEnded(stream_id=user, session_id=session)),
    ]
    ops = _flat(p.plan(events))
    assert ops.index((p.users._SESSION_CREATED, user)) < ops.index((p.users._SESSION_ENDED, user))


def test_runs_of_one_event_type_group_into_one_statement() -> None:
    owner, lib = uuid.uuid4(), uuid.uuid4()
    events: list[tuple[int, ev.BaseEvent]] = []
    for i in range(10):
        a = uuid.uuid4()
        events.append(
            (
                2 * i + 1,
                ev.FileDiscovered(
                    stream_id=a,
                    library_id=lib,
                    owner_id=owner,
                    path=f"/m/{i}.jpg",
                    type="IMAGE",
                    file_modified_at=NOW,
                    file_size=1,
                ),
            )
        )
        events.append(
            (
                2 * i + 2,
                ev.AssetOffline(stream_id=a, library_id=lib, reason=ev.OfflineReason.DELETED),
            )
        )
    plan = p.plan(events)
    assert [(stmt, len(rows)) for stmt, rows in plan] == [
        (p.assets._ASSET_INSERT, 10),
        (p.assets._ASSET_OFFLINE, 10),
    ]


def test_a_library_deletion_is_a_barrier() -> None:
    owner, lib, a = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events: list[tuple[int, ev.BaseEvent]] = [
        (
            1,
            ev.FileDiscovered(
                stream_id=a,
                library_id=lib,
                owner_id=owner,
                path="/m/a.jpg",
                type="IMAGE",
                file_modified_at=NOW,
                file_size=1,
            ),
        ),
        (2, ev.LibraryDeleted(stream_id=lib)),
    ]
    stmts = [stmt for stmt, _ in p.plan(events)]
    assert stmts.index(p.assets._ASSET_INSERT) < stmts.index(p.libraries._LIBRARY_ASSETS_DELETED)
