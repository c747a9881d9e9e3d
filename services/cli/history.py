"""An asset's whole history: the messages on its own subject, and its births, which are stored
on its folder's subject (FilesDiscovered, decision 0030)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NamedTuple

import msgspec
from nats.js.errors import NotFoundError

from shared import events as ev
from shared.db import create_engine
from shared.ids import external_asset_id, folder_id

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from shared.settings import NatsSettings


class Stored(NamedTuple):
    """One stored message: its sequence, subject, headers and bytes."""

    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


async def subject_messages(js: JetStreamContext, stream: str, subject: str) -> list[Stored]:
    """Every message stored under `subject` (no wildcard), oldest first."""
    out: list[Stored] = []
    seq = 0
    while True:
        try:
            msg = await js.get_msg(stream, seq=seq + 1, subject=subject, next=True)
        except NotFoundError:
            return out
        seq = int(msg.seq or 0)
        out.append(Stored(seq, msg.subject or subject, dict(msg.headers or {}), msg.data or b""))


async def asset_folder(db_url: str, asset_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
    """(library, folder) of an asset the read model has, or None."""
    engine = create_engine(db_url, pool=False)
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            row = await raw.fetchrow("SELECT library_id, dir FROM assets WHERE id = $1", asset_id)
    finally:
        await engine.dispose()
    return (row["library_id"], row["dir"]) if row else None


async def births(
    js: JetStreamContext,
    nats: NatsSettings,
    asset_id: uuid.UUID,
    library_id: uuid.UUID,
    folder: str,
) -> list[tuple[Stored, ev.FilesDiscovered]]:
    """The FilesDiscovered of `folder` that name the asset, each cut down to the asset's file."""
    subject = nats.subject("events", "folder", str(folder_id(library_id, folder)))
    out = []
    for stored in await subject_messages(js, nats.name("EVENTS"), subject):
        try:
            event = ev.decode(stored.data)
        except msgspec.DecodeError:
            continue
        if not isinstance(event, ev.FilesDiscovered):
            continue
        mine = [
            f for f in event.files if external_asset_id(library_id, event.path_of(f)) == asset_id
        ]
        if mine:
            out.append((stored, msgspec.structs.replace(event, files=mine)))
    return out
