"""An aggregate owns its position: every event on its subject moves its read model's `last_seq`
(decision 0022), so the API's guarded writes never answer 409 unless someone really wrote first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared import events as ev
from shared.bus import EventBus
from shared.metadata import AssetMetadata
from shared.sysconfig import LibraryConfig
from tests.factories import backdate, jpeg_bytes, make_tree
from tests.helpers import ok
from tests.integration.conftest import World
from tests.integration.test_watcher import open_world
from tests.system import Infra, System, eventually, open_system

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Refs:
    """The aggregates every sample event is written to, created first."""

    def __init__(self) -> None:
        self.user, self.library, self.asset, self.album = (uuid.uuid4() for _ in range(4))
        self.session, self.key = uuid.uuid4(), uuid.uuid4()


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
        stream_id=r.library, scan_id=r.session, path="/m/x", problem="cannot read folder"
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
    ev.FileChanged: lambda r: ev.FileChanged(**_file(r), file_modified_at=NOW, file_size=2),
    ev.AssetOffline: lambda r: ev.AssetOffline(
        stream_id=r.asset, library_id=r.library, reason=ev.OfflineReason.DELETED
    ),
    ev.AssetOnline: lambda r: ev.AssetOnline(stream_id=r.asset, library_id=r.library),
    ev.MetadataExtracted: lambda r: ev.MetadataExtracted(
        stream_id=r.asset, metadata=AssetMetadata(checksum="c", file_size=2, file_modified_at=NOW)
    ),
    ev.MetadataFailed: lambda r: ev.MetadataFailed(stream_id=r.asset, reason="broken"),
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
}

TABLES = {
    ev.Aggregate.USER: "users",
    ev.Aggregate.LIBRARY: "libraries",
    ev.Aggregate.ASSET: "assets",
    ev.Aggregate.ALBUM: "albums",
}


async def _position(system: System, aggregate: ev.Aggregate, stream_id: uuid.UUID) -> int | None:
    async with system.ctx.engine.connect() as conn:
        row = (
            await conn.execute(
                text(f"SELECT last_seq FROM {TABLES[aggregate]} WHERE id = :id"), {"id": stream_id}
            )
        ).first()
    return None if row is None else int(row.last_seq)


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(ev.EVENT_TYPES)


async def test_every_event_moves_its_aggregates_position_to_its_subjects_last(
    infra: Infra, tmp_path: Path
) -> None:
    """Each event type in turn, through the real projector: the row of the aggregate it was
    written to holds the sequence of the newest event on that subject; scan bookkeeping and
    server events move no library, user, asset or album."""
    async with open_system(infra, tmp_path) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        refs = Refs()
        checked = 0
        for kind, sample in SAMPLES.items():
            event = sample(refs)
            before = {
                a: await _position(system, a, i)
                for a, i in (
                    (ev.Aggregate.USER, refs.user),
                    (ev.Aggregate.LIBRARY, refs.library),
                    (ev.Aggregate.ASSET, refs.asset),
                    (ev.Aggregate.ALBUM, refs.album),
                )
            }
            seq = await bus.publish(event)
            await system.ctx.settle(seq)
            if event.aggregate in TABLES:
                position = await _position(system, event.aggregate, event.stream_id)
                last, _ = await bus.last_event(event.aggregate.value, event.stream_id)
                assert last == seq
                gone = kind in (ev.AssetRemoved, ev.AlbumDeleted, ev.LibraryDeleted)
                assert position == (None if gone else seq), kind.__name__
                checked += 1
            else:
                for aggregate, was in before.items():
                    now = await _position(
                        system,
                        aggregate,
                        {
                            ev.Aggregate.USER: refs.user,
                            ev.Aggregate.LIBRARY: refs.library,
                            ev.Aggregate.ASSET: refs.asset,
                            ev.Aggregate.ALBUM: refs.album,
                        }[aggregate],
                    )
                    assert now == was, f"{kind.__name__} moved the {aggregate} position"
        assert checked == sum(1 for t in SAMPLES if t.aggregate in TABLES)


async def test_an_event_the_projector_cannot_read_still_moves_the_position(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        refs = Refs()
        for kind in (ev.UserCreated, ev.LibraryCreated):
            await system.ctx.settle(await bus.publish(SAMPLES[kind](refs)))
        subject = bus.aggregate_subject("library", refs.library)
        ack = await system.ctx.nc.jetstream().publish(subject, b'{"event": "FromTheFuture"}')
        await system.ctx.settle(ack.seq)
        assert await _position(system, ev.Aggregate.LIBRARY, refs.library) == ack.seq


async def test_library_edits_answer_200_after_scans(world: World) -> None:
    """A full scan, then a scan of one folder (the watcher's kind): the library's guarded
    routes still answer 200 (they answered 409 while scan bookkeeping shared its subject)."""
    make_tree(world.media, {"trip/a.jpg": None, "trip/day/b.jpg": None})
    lib = await world.library(world.media)
    client, admin = world.system.client, world.admin
    await world.scan(lib)
    await ok(await client.put(f"/api/libraries/{lib}", json={"name": "Trip"}, headers=admin))
    await world.scan(lib, {"path": str(world.media / "trip" / "day")})
    await ok(
        await client.put(
            f"/api/libraries/{lib}", json={"exclusionPatterns": ["**/Raw/**"]}, headers=admin
        )
    )
    await world.scan(lib, {"refreshModifiedFiles": True})
    await ok(await client.delete(f"/api/libraries/{lib}", headers=admin), 204)


async def test_library_edits_answer_200_after_the_watcher_reconciles_a_folder(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_world(infra, tmp_path) as w:
        make_tree(w.media, {"old/a.jpg": None})
        backdate(w.media)  # indexed with its mtime by the catch-up scan
        lib = await w.library(w.media)
        await w.watching(lib, w.media)
        # A new file changes old/'s mtime: the watcher's reconciliation of old/ re-indexes it.
        (w.media / "old" / "late.jpg").write_bytes(jpeg_bytes())

        async def imported() -> bool:
            return any(p.endswith("late.jpg") for p in await w.assets(lib))

        await eventually(imported, 15, "the watcher to import late.jpg")
        await w.caught_up(lib)
        r = await w.system.client.put(
            f"/api/libraries/{lib}", json={"name": "Watched"}, headers=w.admin
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Watched"


async def test_a_real_concurrent_edit_answers_409(world: World) -> None:
    """Someone else wrote to the library after the read model was read: Immich's 409 shape."""
    lib = await world.library(world.media)
    bus = EventBus(world.system.ctx.nc, world.system.settings.nats)
    await world.system.stop("projector")  # the other write stays unread by the read model
    await bus.publish(ev.LibraryRenamed(stream_id=uuid.UUID(lib), name="by someone else"))
    r = await world.system.client.put(
        f"/api/libraries/{lib}", json={"name": "mine"}, headers=world.admin
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["statusCode"] == 409 and body["error"] == "Conflict"
    assert "changed by someone else" in body["message"]
