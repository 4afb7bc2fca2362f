"""The ``/ws`` endpoint: authentication, the event protocol, presence.

Life of a socket: verify the token, register with the hub (buffering bus
events), subscribe to the room, run the connect script (which returns the
``room:state`` snapshot and its sequence number, or with ``?since=`` the
events missed since then), send it, then the buffered events newer than it.
Events are thus never lost nor doubled between the snapshot and the live
stream. What reaches the client and when (buffering, per-member filtering,
acks, closes) is the :class:`Session`'s business (``session.py``); this
handler does the I/O: handshake, Redis calls, dispatch.

Before the upgrade, ``get`` refuses in the documented JSON what needs no
socket: a request without an upgrade (426), and an upgrade flood (429, counted
per client address and per user in the shared Redis throttle).

Client frames are rate-checked, parsed and validated the moment they are read
(``on_message`` never awaits, so Tornado keeps reading while Redis is slow);
valid ones then run one at a time, in order, from a small per-socket queue. A
Redis stall therefore delays answers but never turns a polite client's queued
frames into a burst that the token bucket would punish.

A token with ``role: viewer`` makes the socket a viewer of the room's audience: it
registers with the hub as a viewer (reached by the bus's ``aud`` only), runs
``audience_connect`` instead of the member's connect (no presence, no ``user:connected``: it
counts the socket on this instance), gets the viewer's ``room:state`` (with ``you``), and may
send :data:`~roomd.transport.commands.VIEWER_EVENTS` only (anything else: ``NOT_ALLOWED``).
Each connect and close writes this instance's number of viewer sockets of the room (the hub
knows it) and says when the audience's count is due; this instance then runs the count script
once per room at that time (``Services.nudges``): the host gets ``audience:count`` at most once a
second however many viewers come and go.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketHandler, WebSocketProtocol

from roomd import protocol
from roomd.domain.bus_message import BusMessage
from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.store import AudienceView, Replaced, Resumed, Snapshot
from roomd.domain.tokens import Claims, bearer_token
from roomd.protocol import CloseCode, ErrorCode
from roomd.transport import frames, writer
from roomd.transport.client_address import client_address
from roomd.transport.commands import VIEWER_EVENTS, Caller, Command
from roomd.transport.context import Services
from roomd.transport.origins import origin_allowed
from roomd.transport.rate import TokenBucket
from roomd.transport.responses import ApiError, JsonErrors
from roomd.transport.session import Session

log = logging.getLogger("roomd.ws")

_CONNECT_CLOSE = {
    ErrorCode.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ErrorCode.ROOM_NOT_FOUND: CloseCode.NOT_FOUND,
    ErrorCode.MEMBER_NOT_FOUND: CloseCode.NOT_FOUND,
}


QUEUE_FRAMES = 32  # valid frames waiting per socket (for Redis, or for roomd itself); more are answered BUSY at once
CLOSE_GRACE = 2.0  # seconds a decided close waits for the replies to the member's own frames
MAX_SINCE_DIGITS = 15


def _state_frame(snapshot: Snapshot) -> bytes:
    data = {"room": snapshot.room, "users": snapshot.users, "state": snapshot.state, **snapshot.extra}
    return frames.encode("room:state", data, snapshot.seq)


VIEWER_BATCH = 500  # viewers whose room:state one read serves after a pub/sub reconnect
_viewer_resyncs: dict[tuple[int, str], list[RoomSocket]] = {}  # (services, room) -> viewers joining a batch now


def _viewer_state_frame(view: AudienceView, audience_id: str, name: str, vote: str | None) -> bytes:
    """A viewer's ``room:state`` from a batch read: the shared part with its own ``you`` and vote."""
    base = view.base
    poll = base.extra.get("poll")
    data = {"room": base.room, "users": base.users, "state": base.state, "poll": poll and {**poll, "vote": vote},
            "you": {"audienceId": audience_id, "displayName": name, "role": "viewer"}}  # fmt: skip
    return frames.encode("room:state", data, base.seq)


async def _resync_viewers(services: Services, code: str, batch: list[RoomSocket]) -> None:
    """Re-read ``room:state`` for a room's viewers that began a resync together, one read per VIEWER_BATCH."""
    for start in range(0, len(batch), VIEWER_BATCH):
        chunk = [s for s in batch[start : start + VIEWER_BATCH] if s.session is not None and not s._closed]
        if not chunk:
            continue
        try:
            view = await services.store.audience_snapshots(code, [s.user_id for s in chunk])
        except DomainError as exc:  # the room is gone: its room:closed is on its way
            for sock in chunk:
                sock._gone(CloseCode.NOT_FOUND, exc)
            continue
        except StoreUnavailable:
            services.metrics.redis_errors.inc()
            for sock in chunk:
                sock._fail(ErrorCode.REDIS_UNAVAILABLE, CloseCode.INTERNAL_ERROR, ErrorCode.REDIS_UNAVAILABLE.message)
            continue
        for sock in chunk:
            own = view.viewers.get(sock.user_id)
            if own is None:  # kicked meanwhile: its audience:kicked is on its way
                sock._gone(CloseCode.NOT_FOUND, DomainError(ErrorCode.MEMBER_NOT_FOUND))
            elif sock.session is not None:
                sock.session.apply_snapshot(_viewer_state_frame(view, sock.user_id, *own), view.base.seq)


def _count_audience(services: Services, code: str, due_ms: int) -> None:
    """Have this instance count room ``code``'s audience at ``due_ms`` (one timer per room, a nudge)."""
    if due_ms <= 0:
        return
    store = services.store

    async def run() -> int | None:
        _, again = await store.audience_count(code, services.hub.viewers(code))
        return again or None

    services.nudges.at(("audience:count", code), due_ms, run)


def _parse_since(raw: str | None) -> int | None:
    """``?since=<seq>``: a non-negative integer, else ignored (the client gets ``room:state``)."""
    if raw is None or not raw.isdigit() or len(raw) > MAX_SINCE_DIGITS:
        return None
    return int(raw)


# A frame accepted for its handler: the command, its data, and what its answers echo (id, event).
_Job = tuple[Command, dict[str, Any], str | int | None, str]


class RoomSocket(JsonErrors, WebSocketHandler):
    room_code: str = ""
    user_id: str = ""  # a viewer's audience id
    socket_id: str = ""
    viewer: bool = False  # a viewer of the room's audience (the token's role), not a member
    session: Session | None = None  # created once the token names the member
    # The hub's LocalSocket calls, bound to the session's own methods once it exists: fan-out
    # calls them once per local member per event, and a forwarding method is a call layer more.
    deliver: Callable[[BusMessage, bytes], None]
    observe: Callable[[int], None]
    # Set per socket only while needed (class defaults keep idle sockets small).
    _token: str | None = None
    _claims: Claims | None = None
    _queue: deque[_Job | bytes] | None = None  # answers and jobs, in the order their frames were read
    _worker: asyncio.Task[None] | None = None

    def initialize(self, services: Services, commands: dict[str, Command]) -> None:
        self.services = services
        self.commands = commands
        self._subscribed = False
        self._connected = False
        self._closed = False  # set by on_close, which may run while open() awaits Redis
        self._bucket = TokenBucket(services.settings.ws_rate_limit, services.settings.ws_rate_burst)
        self._max_buffer = services.settings.ws_max_buffer_bytes

    # -- handshake ----------------------------------------------------------

    async def get(self, *args: str, **kwargs: str) -> None:
        """Refuse, before the upgrade and in the documented JSON, what should not get a socket.

        A request that is not an upgrade answers 426 ``UPGRADE_REQUIRED``.
        Upgrades are counted per client address (WS_CONNECT_LIMIT) and per user
        (WS_CONNECT_USER_LIMIT) per THROTTLE_TTL_MS in the throttle all
        instances share: past either, 429 ``RATE_LIMITED`` with Retry-After. Each
        accepted upgrade can cost the room one ``user:connected`` and one
        ``user:disconnected``, so the per-user budget also bounds the presence
        frames a reconnecting member can make its room receive. A bad token is
        not refused here: it gets its error frame and close code 4401 after the
        upgrade, which browsers can see (they cannot see an HTTP status).
        """
        headers = self.request.headers
        connection = {part.strip().lower() for part in headers.get("Connection", "").split(",")}
        if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
            raise ApiError(ErrorCode.UPGRADE_REQUIRED)
        self._token = bearer_token(headers.get("Authorization")) or self._query_token()
        if not self.services.draining:  # a draining server answers with 1001 after the upgrade
            await self._throttle_upgrade()
        await super().get(*args, **kwargs)

    async def _throttle_upgrade(self) -> None:
        services = self.services
        s = services.settings
        scope, limit = "client address", s.ws_connect_limit
        try:
            verdict = await services.throttle.hit(f"ws:{client_address(self.request, s.trust_proxy)}", limit)
            if verdict.allowed:
                try:
                    claims = self._verify()
                except DomainError:
                    return  # answered after the upgrade (4401); the address budget still counted it
                scope, limit = "user", s.ws_connect_user_limit
                verdict = await services.throttle.hit(f"wsu:{claims.user_id}", limit)
        except StoreUnavailable:
            services.metrics.redis_errors.inc()
            raise ApiError(ErrorCode.REDIS_UNAVAILABLE) from None
        if not verdict.allowed:
            services.metrics.rate_limited.labels("ws_connect").inc()
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                f"At most {limit} WebSocket connections per {scope} per {s.throttle_ttl_ms} ms; retry later",
                retry_after=max(1, math.ceil(verdict.retry_after_ms / 1000)),
            )

    def _query_token(self) -> str | None:
        try:
            return self.get_query_argument("token", None)
        except ApiError:
            return "not UTF-8"  # a malformed token: refused like any other (4401) after the upgrade

    def _verify(self) -> Claims:
        """The token's claims (verified once per socket), or DomainError(UNAUTHORIZED)."""
        if self._claims is None:
            self._claims = self.services.tokens.verify(self._token)
        return self._claims

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Tornado's own refusals of a handshake are plain text: answer them in the documented JSON.

        Tornado's ``get`` refuses a cross-origin upgrade with 403 and missing
        ``Sec-WebSocket-*`` headers with 400 or 426 by setting a status and
        finishing; once upgraded, ``finish`` is no longer reachable.
        """
        status = self.get_status()
        if status >= 400 and not self._json_error_sent:
            code = ErrorCode.ORIGIN_NOT_ALLOWED if status == 403 else ErrorCode.UPGRADE_REQUIRED
            self.clear()
            return self.send_json_error(code.http_status, code, code.message)
        return super().finish(chunk)

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.services.settings.cors_origins, self.request.host)

    def get_compression_options(self) -> None:
        return None  # broadcasts are pre-framed once; compression would be per socket

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        """Tornado's protocol, reading client frames in chunks (writer.read_frames_fast: ~-30% per frame)."""
        proto = super().get_websocket_protocol()
        writer.read_frames_fast(proto)
        return proto

    async def open(self, *args: str, **kwargs: str) -> None:
        try:
            await self._attach()
        except Exception:  # never Tornado's abort (1006, and its log line with the URI)
            log.exception("connect failed (room %s)", self.room_code or "-")
            self._fail(ErrorCode.UNKNOWN_ERROR, CloseCode.INTERNAL_ERROR, ErrorCode.UNKNOWN_ERROR.message)

    async def _attach(self) -> None:
        """Verify, subscribe, mark connected, send ``room:state`` (``open`` wraps it in a catch-all)."""
        services = self.services
        if services.draining:
            self.close(CloseCode.GOING_AWAY, CloseCode.GOING_AWAY.name)
            return
        try:
            claims = self._verify()
        except DomainError as exc:
            self._fail(exc.code, CloseCode.UNAUTHORIZED, exc.message)
            return
        finally:
            self.__dict__.pop("_token", None)  # back to the class default: the socket keeps no copy
        self.room_code, self.user_id = claims.room_code, claims.user_id
        self.socket_id = secrets.token_hex(8)
        if claims.viewer:
            self.viewer = True
        self.session = session = Session(self.user_id, self.socket_id, self, viewer=self.viewer)
        self.deliver, self.observe = session.deliver, session.observe  # before the hub sees this socket
        try:
            since = _parse_since(self.get_query_argument("since", None))
        except ApiError:
            since = None  # not UTF-8: ignored like any malformed since
        stream = self.ws_connection.stream if self.ws_connection else None
        if stream is not None:
            stream.set_nodelay(True)
            # A verified member no longer counts against its address's cap (roomd/listener.py).
            getattr(stream.socket, "mark_authenticated", lambda: None)()
        services.hub.add(self)
        try:
            await services.bus.subscribe(self.room_code)
            self._subscribed = True
            if self._closed:  # the peer left while we subscribed: on_close could not release
                services.bus.unsubscribe(self.room_code)
                return
            if self.viewer:
                online = services.hub.viewers(self.room_code)  # this socket included
                first, due = await services.store.audience_connect(self.room_code, self.user_id, since, online=online)
                _count_audience(services, self.room_code, due)
            else:
                first = await services.store.connect_since(self.room_code, self.user_id, self.socket_id, since)
        except DomainError as exc:
            self._fail(exc.code, _CONNECT_CLOSE.get(exc.code, CloseCode.NOT_FOUND), exc.message)
            return
        except (StoreUnavailable, TimeoutError) as exc:
            services.metrics.redis_errors.inc()
            log.warning("connect failed: Redis unavailable (%s)", exc)
            self._fail(ErrorCode.REDIS_UNAVAILABLE, CloseCode.INTERNAL_ERROR, ErrorCode.REDIS_UNAVAILABLE.message)
            return
        except Exception:
            log.exception("connect failed (room %s)", self.room_code)
            self._fail(ErrorCode.UNKNOWN_ERROR, CloseCode.INTERNAL_ERROR, ErrorCode.UNKNOWN_ERROR.message)
            return
        self._connected = True
        if self._closed:  # the peer left during the connect script: undo the presence it set
            services.spawn(self._mark_disconnected())
            return
        session.incarnation = first.incarnation
        if isinstance(first, Resumed):
            resumed = frames.encode("room:resumed", {"since": first.since, "seq": first.seq})
            session.apply_resumed(resumed, first.messages, first.seq)
        else:
            session.apply_snapshot(_state_frame(first), first.seq)

    def begin_resync(self) -> Awaitable[None] | None:
        """The bus may have lost events (a subscription came back): the session holds live events
        back from now on; the returned ``room:state`` re-read is awaited by the hub."""
        if self.session is None or not self.session.begin_resync():
            return None
        if not self.viewer:
            return self._read_snapshot()
        # Viewers: the hub asks every socket of the room in one go, then awaits the reads; the
        # first viewer's read serves every viewer that joins its batch before this loop turn ends.
        key = (id(self.services), self.room_code)
        batch = _viewer_resyncs.get(key)
        if batch is not None:
            batch.append(self)
            return None
        _viewer_resyncs[key] = batch = [self]
        asyncio.get_running_loop().call_soon(_viewer_resyncs.pop, key, None)
        return _resync_viewers(self.services, self.room_code, batch)

    async def _read_snapshot(self) -> None:
        """Re-read ``room:state`` for the session (events meanwhile are queued by it)."""
        try:
            if self.viewer:
                snapshot = await self.services.store.audience_snapshot(self.room_code, self.user_id)
            else:
                snapshot = await self.services.store.snapshot(self.room_code, self.user_id, self.socket_id)
        except Replaced:
            self._gone(CloseCode.REPLACED, None)
        except DomainError as exc:
            self._gone(CloseCode.NOT_FOUND, exc)
        except StoreUnavailable:
            # The session cannot go live without it: the client reconnects (with since).
            self.services.metrics.redis_errors.inc()
            self._fail(ErrorCode.REDIS_UNAVAILABLE, CloseCode.INTERNAL_ERROR, ErrorCode.REDIS_UNAVAILABLE.message)
        else:
            if self.session is not None:
                self.session.apply_snapshot(_state_frame(snapshot), snapshot.seq)

    def _gone(self, close_code: CloseCode, exc: DomainError | None) -> None:
        """The member is no longer this socket's (kicked, left, replaced, room closed) while resyncing.

        The event that tells the client why is queued or on its way: let the session
        write it (with its own close code); close with ``close_code`` only if it does
        not come within CLOSE_GRACE.
        """
        if self.session is None or not self.session.abandon_snapshot():
            return

        def fallback() -> None:
            if self.ws_connection is not None and not self.ws_connection.is_closing():
                if exc is None:
                    self.close(close_code, close_code.name)
                else:
                    self._fail(exc.code, close_code, exc.message)

        IOLoop.current().call_later(CLOSE_GRACE, fallback)

    def _fail(self, code: ErrorCode, close_code: CloseCode, message: str) -> None:
        if self.session is not None:
            self.session.closed()
        self._send(frames.error(code.value, message))
        self.close(close_code, code.value)

    # -- the session's sink ------------------------------------------------------

    def close_with(self, code: CloseCode) -> None:
        self.close(code, code.name)

    def closing(self, code: CloseCode) -> None:
        """A close waits for our own replies, but not for ever (a lost ack must not keep it open)."""
        IOLoop.current().call_later(CLOSE_GRACE, self.close_with, code)

    def want_snapshot(self) -> None:
        self.services.spawn(self._read_snapshot())

    def wait_for_room(self, waiting: bool) -> None:
        self.services.hub.wait(self, waiting)

    def _send(self, payload: bytes) -> None:
        self._write_wire(frames.wire(payload))

    def _write_wire(self, wire: bytes) -> None:
        """Queue a complete frame; a client that stopped reading is cut off, not buffered for ever.

        Tornado's write buffer is unbounded: past WS_MAX_BUFFER_BYTES of unsent
        data the socket is closed with 4408 (the client may reconnect), so one
        slow consumer costs bounded memory and never delays its room.
        """
        conn = self.ws_connection
        if conn is None or conn.is_closing() or conn.stream is None:
            return
        try:
            writer.write(conn.stream, wire, self._max_buffer)
        except writer.Overflow as full:
            log.info("closing a slow consumer (room %s): %d bytes unsent", self.room_code, full.unsent)
            self.close(CloseCode.SLOW_CONSUMER, CloseCode.SLOW_CONSUMER.name)

    # The session's sink writes through this very function (no forwarding call per frame: fan-out
    # runs it once per socket per event, 10,000 times per broadcast in a big audience).
    write_wire = _write_wire

    # -- client frames --------------------------------------------------------

    def on_message(self, message: str | bytes) -> None:
        """Judge a frame the moment it is read; never await (Tornado reads no further until this returns).

        The token bucket thus sees the client's own sending rate even while
        Redis is stalled; handlers run later, one at a time, in ``_drain``. No
        exception leaves this method: Tornado would abort the socket (1006) and
        log the request's URI, ``?token=`` included.
        """
        try:
            self._judge(message)
        except Exception:
            log.exception("a client frame could not be handled (room %s)", self.room_code or "-")
            self._answer(frames.error(ErrorCode.UNKNOWN_ERROR.value, ErrorCode.UNKNOWN_ERROR.message))

    def _judge(self, message: str | bytes) -> None:
        if not self._bucket.take():
            self.services.metrics.rate_limited.labels("ws").inc()
            if self._bucket.flooding:
                self._fail(ErrorCode.RATE_LIMITED, CloseCode.RATE_LIMITED, "Too many messages; closing")
            else:
                self._answer(frames.error(ErrorCode.RATE_LIMITED.value, "Too many messages; slow down"))
            return
        if isinstance(message, bytes):
            self._answer(frames.error(ErrorCode.INVALID_MESSAGE.value, "Frames must be JSON text frames"))
            return
        try:
            frame = protocol.parse_json(message)
        except protocol.InvalidJson as exc:
            self._answer(frames.error(ErrorCode.INVALID_MESSAGE.value, f"The frame {exc}"))
            return
        if not isinstance(frame, dict):
            self._answer(frames.error(ErrorCode.INVALID_MESSAGE.value, "A frame must be a JSON object"))
            return
        msg_id = frame.get("id")
        if isinstance(msg_id, bool) or not isinstance(msg_id, str | int):
            msg_id = None
        event = frame.get("event")
        if not isinstance(event, str):
            self._answer(frames.error(ErrorCode.INVALID_MESSAGE.value, "event: must be a string", msg_id=msg_id))
            return
        command = self.commands.get(event)
        if command is None:
            self._answer(frames.error(ErrorCode.UNKNOWN_EVENT.value, f"Unknown event {event[:64]!r}", msg_id=msg_id,
                                      event=event[:64]))  # fmt: skip
            return
        if self.viewer and event not in VIEWER_EVENTS:
            self._answer(frames.error(ErrorCode.NOT_ALLOWED.value, "A viewer may not send this event", msg_id=msg_id,
                                      event=event))  # fmt: skip
            return
        # The event's schema validates the whole frame (envelope included), compiled at start.
        problem = command.problem(message, frame)
        if problem is not None:
            self._answer(frames.error(ErrorCode.INVALID_MESSAGE.value, problem, msg_id=msg_id, event=event))
            return
        queue = self._queue
        if queue is not None and len(queue) >= QUEUE_FRAMES:
            # A Redis stall, or a roomd behind on its work (a host answering a burst), backs the
            # queue up this far (the bucket bounds what comes in): answer now rather than hold
            # unbounded work or stop reading. BUSY, not REDIS_UNAVAILABLE: the backlog may be ours.
            self._reply(frames.error(ErrorCode.BUSY.value, ErrorCode.BUSY.message, msg_id=msg_id, event=event))
            return
        self._enqueue((command, frame.get("data") or {}, msg_id, event))

    def _answer(self, payload: bytes) -> None:
        """Send an answer to a frame after the answers still owed to earlier frames (order preserved)."""
        if self._queue and len(self._queue) < QUEUE_FRAMES:
            self._enqueue(payload)
        else:
            self._reply(payload)

    def _reply(self, payload: bytes) -> None:
        """An answer to a client frame, behind the acks still waiting for their events (session)."""
        if self.session is not None:
            self.session.reply(payload)
        else:
            self._send(payload)

    def _enqueue(self, item: _Job | bytes) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(item)
        if self._worker is None:
            self._worker = self.services.spawn(self._drain())

    async def _drain(self) -> None:
        """Run queued handlers one at a time, in the order their frames were read."""
        queue = self._queue
        try:
            while queue:
                item = queue[0]
                if isinstance(item, bytes):
                    self._reply(item)
                else:
                    await self._run(*item)
                queue.popleft()
        finally:
            self._worker = None
            if not queue:
                self._queue = None  # idle sockets hold no queue

    async def _run(self, command: Command, data: dict[str, Any], msg_id: str | int | None, event: str) -> None:
        """Run one handler; answer ``ack {id, seq}`` (after the frames up to seq this member receives) or an error."""
        session = self.session
        if session is None:
            return
        session.command_started()
        try:
            caller = Caller(self.room_code, self.user_id, "viewer" if self.viewer else "member")
            seq = await command.handler(self.services.store, caller, data)
            if msg_id is not None:
                session.reply(frames.ack(msg_id, seq), seq)
        except DomainError as exc:
            session.reply(frames.error(exc.code.value, exc.message, msg_id=msg_id, event=event, extra=exc.data))
        except StoreUnavailable:
            session.reply(
                frames.error(
                    ErrorCode.REDIS_UNAVAILABLE.value, ErrorCode.REDIS_UNAVAILABLE.message, msg_id=msg_id, event=event
                )
            )
        except Exception:
            log.exception("event %s failed (room %s)", event, self.room_code)
            session.reply(
                frames.error(ErrorCode.UNKNOWN_ERROR.value, ErrorCode.UNKNOWN_ERROR.message, msg_id=msg_id, event=event)
            )
        finally:
            session.command_finished()

    # -- teardown -------------------------------------------------------------

    def on_close(self) -> None:
        self._closed = True
        if self.session is not None:
            self.session.closed()
        services = self.services
        services.hub.remove(self)
        if self._subscribed:
            services.bus.unsubscribe(self.room_code)
        if self._connected:
            services.spawn(self._mark_disconnected())

    @property
    def registered(self) -> bool:
        """Connected in Redis as a member through this socket (its connect script ran) and still open.
        Never a viewer's: viewers have no presence record nor socket-index entry to reconcile."""
        return self._connected and not self._closed and not self.viewer

    async def _mark_disconnected(self) -> None:
        """Retried with capped back-off while Redis is unavailable: a lost disconnect is a ghost.

        A draining instance stops retrying (the drain retires its socket index, or other
        instances reap it); the periodic reconciliation would also heal what this misses.
        """
        delay = 0.1
        while True:
            try:
                if self.viewer:  # uncounted on this instance; the host's count follows
                    online = self.services.hub.viewers(self.room_code)  # this socket left the hub already
                    due = await self.services.store.audience_disconnect(self.room_code, online)
                    _count_audience(self.services, self.room_code, due)
                else:
                    await self.services.store.disconnect(self.room_code, self.user_id, self.socket_id)
                return
            except StoreUnavailable:
                if delay == 0.1:
                    log.warning("could not mark a user disconnected: Redis unavailable; retrying")
                if self.services.draining:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
