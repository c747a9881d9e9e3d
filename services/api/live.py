"""Immich's live updates: a socket.io server at /api/socket.io, fed from the event stream.

Immich's web and mobile clients keep a socket.io connection open and refresh what they show on
`on_upload_success`, `on_asset_update`, `on_asset_delete`, `on_session_delete` and
`on_server_version` (Immich's `ClientEventMap`, server/src/repositories/event.repository.ts).
Each connection authenticates like the REST API and joins a room named after its user's id
(and one after its session's id), so a user hears only about their own assets.

The feed is an ordered, ephemeral JetStream consumer of this api replica, created when the
first client connects and starting at the stream's end (live updates are news, not history).
Each batch of events waits until the projector has applied it, then is read from the read
models and sent in Immich's shapes. Nothing is recorded: a client that was away reloads, as
Immich's clients do after a reconnect (decision 0019).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import msgspec
import socketio
from litestar import asgi
from litestar.connection import ASGIConnection
from nats.js import api
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.api import assets
from services.api.auth import AuthUser, lookup_caller, public
from services.api.routes.server import VERSION
from services.api.schemas import ServerVersionResponseDto
from shared import events as ev
from shared.errors import NotReady

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import Receive, Scope, Send
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    from services.api.context import Context

log = logging.getLogger(__name__)

PATH: Final = "/api/socket.io"
# Events handled per read of the read models; a scan's burst is sent in batches of this size.
BATCH: Final = 500
# Assets discovered or uploaded whose first reading has not arrived yet: that reading is their
# on_upload_success, every later one an on_asset_update. Bounded: beyond it, the oldest are
# forgotten (they are then announced as updates, which Immich's clients handle the same way).
FRESH_LIMIT: Final = 100_000
_WAIT: Final = 30.0  # one wait for the projector; the feed waits again while it is behind

_LIBRARY_OWNERS = text("SELECT id, owner_id FROM libraries WHERE id = ANY(:ids)")
_ASSETS = text(assets.ASSET_SELECT + " WHERE a.id = ANY(:ids)")


@dataclass(frozen=True)
class Change:
    """One event the clients hear about: what to send and about which asset or session."""

    seq: int
    kind: str  # a ClientEvent name
    id: uuid.UUID
    library_id: uuid.UUID | None = None


def change_of(event: ev.BaseEvent, seq: int, fresh: OrderedDict[uuid.UUID, None]) -> Change | None:
    """What an event means to Immich's clients, or None (pure: `fresh` is the only state)."""
    if isinstance(event, ev.FileDiscovered | ev.AssetUploaded | ev.FilesDiscovered):
        if isinstance(event, ev.FilesDiscovered):
            for asset_id in event.asset_ids():
                fresh[asset_id] = None
        else:
            fresh[event.stream_id] = None
        while len(fresh) > FRESH_LIMIT:
            fresh.popitem(last=False)
        return None
    if isinstance(event, ev.MetadataExtracted | ev.MetadataFailed):
        first = event.stream_id in fresh
        fresh.pop(event.stream_id, None)
        return Change(seq, "on_upload_success" if first else "on_asset_update", event.stream_id)
    if isinstance(event, ev.AssetOffline | ev.AssetOnline):
        return Change(seq, "on_asset_update", event.stream_id)
    if isinstance(event, ev.AssetRemoved):
        fresh.pop(event.stream_id, None)
        return Change(seq, "on_asset_delete", event.stream_id, event.library_id)
    if isinstance(event, ev.SessionEnded):
        return Change(seq, "on_session_delete", event.session_id)
    return None


def _credentials(environ: dict[str, Any], auth: Any) -> tuple[str | None, str | None]:
    """(API key, session token) as Immich reads them for a socket: headers, then the query,
    then socket.io's auth payload."""
    scope: Any = environ.get("asgi.scope") or {"type": "http", "headers": []}
    connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope=scope)
    headers = connection.headers
    query = parse_qs(environ.get("QUERY_STRING", ""))
    payload = auth if isinstance(auth, dict) else {}

    def first(*values: Any) -> str | None:
        return next((v for v in values if isinstance(v, str) and v), None)

    api_key = first(headers.get("x-api-key"), *query.get("apiKey", []), payload.get("apiKey"))
    bearer = headers.get("authorization", "")
    token = first(
        headers.get("x-immich-user-token"),
        headers.get("x-immich-session-token"),
        *query.get("sessionKey", []),
        bearer[7:].strip() if bearer.lower().startswith("bearer ") else None,
        connection.cookies.get("immich_access_token"),
        payload.get("token"),
    )
    return api_key, None if api_key else token


class LiveUpdates:
    """The socket.io server and the feed that drives it, for one api replica."""

    def __init__(self, get_ctx: Callable[[], Context]) -> None:
        self.get_ctx = get_ctx
        # always_connect: the client is connected before it is authenticated, and one that
        # fails hears Immich's `error: unauthorized` and is disconnected. WebSocket only, as
        # Immich serves it: no long-polling session to keep on one replica. Origins: same-origin
        # only for browsers (python-engineio's default); the apps send no Origin.
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            transports=["websocket"],
            always_connect=True,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._connect)
        self._users: dict[str, AuthUser] = {}
        self._fresh: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._queue: asyncio.Queue[Change] = asyncio.Queue()
        self._started = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: JetStreamContext.PushSubscription | None = None
        self.sio.on("disconnect", self._disconnect)

    # ----------------------------------------------------------------------------- sockets

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        ctx = self.get_ctx()
        api_key, token = _credentials(environ, auth)
        user = await lookup_caller(ctx, api_key=api_key, token=token)
        if user is None:
            log.info("live: socket %s refused: not signed in", sid)
            await self.sio.emit("error", "unauthorized", to=sid)
            return False
        await self._start_feed(ctx)
        self._users[sid] = user
        await self.sio.enter_room(sid, str(user.id))
        if user.session_id is not None:
            await self.sio.enter_room(sid, str(user.session_id))
        major, minor, patch = VERSION
        version = ServerVersionResponseDto(major=major, minor=minor, patch=patch)
        await self.sio.emit("on_server_version", msgspec.to_builtins(version), to=sid)
        return True

    async def _disconnect(self, sid: str, *_: Any) -> None:
        self._users.pop(sid, None)

    def _listening(self) -> bool:
        return bool(self._users)

    # -------------------------------------------------------------------------------- feed

    async def _start_feed(self, ctx: Context) -> None:
        """The ordered consumer, from the stream's end, once: before the first client is told
        it is connected, so everything it causes afterwards reaches it."""
        async with self._started:
            if self._sub is not None:
                return
            nats = ctx.settings.nats
            self._sub = await ctx.nc.jetstream().subscribe(
                nats.subject("events", ">"),
                stream=nats.name("EVENTS"),
                ordered_consumer=True,
                deliver_policy=api.DeliverPolicy.NEW,
                cb=self._on_message,
            )
            self._tasks.append(asyncio.create_task(self._send_loop(ctx), name="live-updates"))

    async def _on_message(self, msg: Msg) -> None:
        if not self._listening():
            return
        try:
            event = ev.decode(msg.data)
        except msgspec.ValidationError:
            return  # the projector records what it cannot read; clients need not hear of it
        change = change_of(event, msg.metadata.sequence.stream, self._fresh)
        if change is not None:
            self._queue.put_nowait(change)

    async def _send_loop(self, ctx: Context) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if not self._listening():
                continue
            try:
                await self._projected(ctx, batch[-1].seq)
                await self._send(ctx, batch)
            except (OSError, SQLAlchemyError) as e:  # the database is away: these are lost
                log.warning("live: %d updates not sent: %s", len(batch), e)

    async def _projected(self, ctx: Context, seq: int) -> None:
        """Wait until the read models include `seq`, however long the projector takes."""
        while True:
            try:
                await ctx.waiter.wait(seq, _WAIT)
                return
            except NotReady:
                log.info("live: waiting for the projector to reach %d", seq)

    async def _send(self, ctx: Context, batch: list[Change]) -> None:
        asset_ids = [c.id for c in batch if c.kind in ("on_upload_success", "on_asset_update")]
        library_ids = list({c.library_id for c in batch if c.library_id is not None})
        async with ctx.engine.connect() as conn:
            rows = (
                {r.id: r for r in await conn.execute(_ASSETS, {"ids": asset_ids})}
                if asset_ids
                else {}
            )
            owners = (
                {
                    r.id: r.owner_id
                    for r in await conn.execute(_LIBRARY_OWNERS, {"ids": library_ids})
                }
                if library_ids
                else {}
            )
        for change in batch:
            if change.kind == "on_session_delete":
                await self.sio.emit(change.kind, str(change.id), room=str(change.id))
            elif change.kind == "on_asset_delete":
                owner = owners.get(change.library_id)
                if owner is not None:
                    await self.sio.emit(change.kind, str(change.id), room=str(owner))
            elif (row := rows.get(change.id)) is not None:
                payload = msgspec.to_builtins(assets.asset_dto(row))
                await self.sio.emit(change.kind, payload, room=str(row.owner_id))

    async def close(self) -> None:
        """Stop the feed and disconnect every client."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        for sid in list(self._users):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid)

    # ----------------------------------------------------------------------------- mount

    def route(self) -> Any:
        """The Litestar mount at /api/socket.io (its WebSocket handshake); public,
        because the socket authenticates itself when it connects."""
        sio = self.sio

        @asgi(PATH, is_mount=True, copy_scope=True, opt=public(), include_in_schema=False)
        async def socket_io(scope: Scope, receive: Receive, send: Send) -> None:
            await sio.handle_request(scope, receive, send)

        return socket_io
