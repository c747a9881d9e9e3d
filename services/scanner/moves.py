"""Moves keep their albums and details: a photo at a new path takes its old self's place.

It takes the old asset's albums, and its favourite, archive, description and rating.

Identity is the path, so a file moved (or a folder renamed) inside a library becomes a new asset
and its old asset goes offline; without this, the albums it was in would keep only the offline
copy and lose the photo for good at the next *remove offline files*. Here, once both facts are in
the read models (the old asset offline, an online asset of the same library with the same SHA-1),
every album that holds the old asset and not the new one gets the new one, and lets go of the old.
A file moved back later is the same case the other way round.

Which fact comes last in the event stream varies (the move's offline mark and the new file's
checksum come from different workers), so both trigger a look: AssetOffline (pairs where it is
the old side), MetadataExtracted and AssetOnline (pairs where it is the new side). Each batch of
events waits until the projector has applied it, then asks once for the whole batch; the later
of the two events always sees the earlier, so no move is missed. Any number of scanner replicas
share one durable consumer; what they publish has ids derived from its content, and adding or
removing an album member twice changes nothing. A batch that fails for a reason of its own is
handled again one message at a time, so only the message at fault is tried again, and recorded
as a dead letter on its last allowed delivery; an undecodable one at once (decision 0024).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

import msgspec
from nats.errors import Error as NatsError
from nats.js import api

from shared import events as ev
from shared import metrics
from shared.consumer import dead_letter
from shared.errors import NotReady
from shared.outage import Outage, unavailable
from shared.settings import ConsumerSettings

if TYPE_CHECKING:
    import asyncpg
    from nats.aio.msg import Msg

    from shared.bus import EventBus
    from shared.checkpoint import CheckpointWaiter
    from shared.settings import NatsSettings

__all__ = ["AlbumMoves", "moved_details", "moved_memberships"]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("0b8e6a52-3c55-4f5e-9a55-6b1a6f0c2d71")
FETCH = 500
ACK_WAIT = 60.0
RETRY_SECONDS = 5.0
DURABLE = "scanner-moves"

# (album, old asset, new asset) for offline/online pairs of one library with one checksum, where
# either side is among :ids and the album holds the old asset but not the new one. Two branches,
# so each side is found through its primary key and (library_id, checksum).
_PAIRS = """
    WITH pairs AS (
        SELECT o.id AS old_id, n.id AS new_id
        FROM assets n JOIN assets o ON o.library_id = n.library_id AND o.checksum = n.checksum
        WHERE n.id = ANY($1::uuid[]) AND NOT n.is_offline AND o.is_offline
        UNION
        SELECT o.id, n.id
        FROM assets o JOIN assets n ON n.library_id = o.library_id AND n.checksum = o.checksum
        WHERE o.id = ANY($1::uuid[]) AND o.is_offline AND NOT n.is_offline
    )
"""

_MOVED = (
    _PAIRS
    + """
    SELECT aa.album_id, p.old_id, p.new_id
    FROM pairs p JOIN album_assets aa ON aa.asset_id = p.old_id
    WHERE NOT EXISTS (
        SELECT 1 FROM album_assets x WHERE x.album_id = aa.album_id AND x.asset_id = p.new_id
    )
    ORDER BY aa.album_id, p.new_id, p.old_id
    """
)


# (old, new, what the user said about the old) for the same pairs, where a user (or an earlier
# move) set the old asset's details and nobody has set the new one's: once carried, the new
# asset is `edited`, so a detail is carried once and never over a later edit.
_MOVED_DETAILS = (
    _PAIRS
    + """
    SELECT DISTINCT ON (n.id) o.id AS old_id, n.id AS new_id, o.is_favorite, o.visibility,
           o.user_description, o.rating
    FROM pairs p JOIN assets o ON o.id = p.old_id JOIN assets n ON n.id = p.new_id
    WHERE o.edited AND NOT n.edited
    ORDER BY n.id, o.updated_at DESC, o.id
    """
)


async def moved_details(pool: asyncpg.Pool, asset_ids: list[uuid.UUID]) -> list[ev.AssetUpdated]:
    """AssetUpdated for each moved asset that takes its old self's favourite, archive,
    description and rating (ids derived from the pair, so a replica's repeat is dropped)."""
    if not asset_ids:
        return []
    rows = await pool.fetch(_MOVED_DETAILS, asset_ids)
    return [
        ev.AssetUpdated(
            stream_id=new_id,
            event_id=uuid.uuid5(_NAMESPACE, f"details:{old_id}:{new_id}"),
            is_favorite=favorite,
            visibility=visibility,
            description=description,
            rating=rating,
            carried_from=old_id,
        )
        for old_id, new_id, favorite, visibility, description, rating in rows
    ]


async def moved_memberships(
    pool: asyncpg.Pool, asset_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]]:
    """Per album: the new assets to add and the old (offline) ones they replace."""
    if not asset_ids:
        return {}
    rows = await pool.fetch(_MOVED, asset_ids)
    out: dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]] = defaultdict(lambda: ([], []))
    for album_id, old_id, new_id in rows:
        added, removed = out[album_id]
        if new_id not in added:
            added.append(new_id)
        if old_id not in removed:
            removed.append(old_id)
    return dict(out)


class _Kind(msgspec.Struct):
    event: str = ""


# Only these can complete a move (_relevant). A first import stores a FileDiscovered and a
# metadata fact per file: reading just the tag of each (the rest of the JSON is skipped, not
# decoded) keeps the follower cheap while the scanner publishes (decision 0028).
_KIND = msgspec.json.Decoder(_Kind)
_MOVING = frozenset({"AssetOffline", "MetadataExtracted", "AssetOnline"})


def _relevant(event: ev.BaseEvent) -> uuid.UUID | None:
    """The asset to look at for this event, if it can complete a move: one that went offline
    (the old side), or one whose content became known or came back (the new side)."""
    if isinstance(event, ev.AssetOffline | ev.MetadataExtracted | ev.AssetOnline):
        return event.stream_id
    return None


class AlbumMoves:
    """Follows asset events through a durable consumer and carries album membership over."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: EventBus,
        waiter: CheckpointWaiter,
        nats: NatsSettings,
        bounds: ConsumerSettings | None = None,
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.waiter = waiter
        self.nats = nats
        self.bounds = bounds or ConsumerSettings()
        self.outage = Outage(log, "moves")

    async def handle(self, events: list[tuple[int, ev.BaseEvent]]) -> int:
        """Carry memberships for a batch of (stream sequence, event); returns albums changed.

        Raises NotReady when the projector has not applied the batch in time (retry later).
        """
        ids = list(dict.fromkeys(a for _, e in events if (a := _relevant(e)) is not None))
        if not ids:
            return 0
        await self.waiter.wait(max(seq for seq, _ in events), ACK_WAIT / 2)
        for carried in await moved_details(self.pool, ids):
            log.info(
                "moves: asset %s takes the details of %s", carried.stream_id, carried.carried_from
            )
            await self.bus.publish(carried)
        changed = await moved_memberships(self.pool, ids)
        for album_id, (added, removed) in changed.items():
            key = f"{album_id}:{','.join(map(str, added))}:{','.join(map(str, removed))}"
            log.info(
                "moves: album %s takes %d moved asset(s) in place of %d offline one(s)",
                album_id,
                len(added),
                len(removed),
            )
            metrics.MOVES_CARRIED.inc(len(added))
            # Added first, so a reader never sees the album without the photo.
            await self.bus.publish(
                ev.AssetsAddedToAlbum(
                    stream_id=album_id,
                    event_id=uuid.uuid5(_NAMESPACE, "add:" + key),
                    asset_ids=added,
                )
            )
            await self.bus.publish(
                ev.AssetsRemovedFromAlbum(
                    stream_id=album_id,
                    event_id=uuid.uuid5(_NAMESPACE, "remove:" + key),
                    asset_ids=removed,
                )
            )
        return len(changed)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume asset events until `stop` is set, starting over after a failure (NATS or
        PostgreSQL gone for a moment): what was not acknowledged is delivered again."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as e:
                what = unavailable(e)
                if what is None:
                    log.exception("moves: consumer failed; starting over in %g s", RETRY_SECONDS)
                else:
                    self.outage.failed(what, e, "the asset events not yet acknowledged")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)

    async def _consume(self, stop: asyncio.Event) -> None:
        js = self.bus.nc.jetstream()
        sub = await js.pull_subscribe(
            self.nats.subject("events", "asset", ">"),
            durable=self.nats.name(DURABLE),
            stream=self.nats.name("EVENTS"),
            # Explicit acks: with AckPolicy.ALL one replica's ack would also settle another
            # replica's batch that is still being handled.
            config=api.ConsumerConfig(
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT,
                max_ack_pending=FETCH * 4,
            ),
        )
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(FETCH, timeout=1.0)
                except TimeoutError:  # nats-py raises its own subclass, or asyncio's itself
                    continue
                decoded = await self._decoded(msgs)
                try:
                    await self.handle([(_seq(m), e) for m, e in decoded])
                except NotReady as e:
                    log.warning("moves: %s; the batch comes back after %g s", e, ACK_WAIT)
                    continue
                except Exception as e:
                    if unavailable(e) is not None:
                        raise  # run() logs the outage once and starts over
                    # One of the batch is at fault: each alone, so only it is tried again.
                    log.exception("moves: a batch of %d failed; each alone", len(decoded))
                    await self._one_by_one(decoded)
                    continue
                for m, _ in decoded:
                    await m.ack()
                if decoded:
                    self.outage.recovered()
        finally:
            # A pull subscription left subscribed holds the connection's drain forever on
            # messages that arrived after the last fetch gave up waiting.
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def _one_by_one(self, decoded: list[tuple[Msg, ev.BaseEvent]]) -> None:
        """Handle each message alone: acked when it goes through, else tried again after the
        back-off, and recorded as a dead letter on its last allowed delivery (decision 0024).
        An outage or a projector behind is raised, as for the batch."""
        for m, event in decoded:
            try:
                await self.handle([(_seq(m), event)])
            except NotReady:
                raise
            except Exception as e:
                if unavailable(e) is not None:
                    raise
                deliveries = int(m.metadata.num_delivered or 1)
                if deliveries >= self.bounds.max_deliver:
                    await self._dead(m, f"{type(e).__name__}: {e}")
                else:
                    log.exception("moves: %s failed (delivery %d)", m.subject, deliveries)
                    await m.nak(delay=self.bounds.delay(deliveries))
            else:
                await m.ack()

    async def _dead(self, m: Msg, error: str) -> None:
        """Record the message as a dead letter, then let it go."""
        letter = dead_letter(DURABLE, "EVENTS", m, error)
        await self.bus.publish(letter)
        log.error("moves: %s recorded as dead letter %s: %s", m.subject, letter.event_id, error)
        metrics.DEAD_LETTERS.labels(DURABLE).inc()
        await m.ack()

    async def _decoded(self, msgs: list[Msg]) -> list[tuple[Msg, ev.BaseEvent]]:
        out: list[tuple[Msg, ev.BaseEvent]] = []
        for m in msgs:
            try:
                if _KIND.decode(m.data).event not in _MOVING:
                    continue
                out.append((m, ev.decode(m.data)))
            except msgspec.DecodeError as e:
                await self._dead(m, f"undecodable: {e}")
        return out


def _seq(m: Msg) -> int:
    return int(m.metadata.sequence.stream)
