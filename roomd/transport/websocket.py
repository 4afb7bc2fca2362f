"""The ``/ws`` endpoint: authentication, the event protocol, presence.

Life of a socket: verify the token, register with the hub (buffering bus
events), subscribe to the room, run the connect script (which returns the
``room:state`` snapshot and its sequence number, or with ``?since=`` the
events missed since then), send it, then the buffered events newer than it.
Events are thus never lost nor doubled between the snapshot and the live
stream. What reaches the client and when is the :class:`Session`'s business
(``session.py``); this handler does the I/O: handshake, Redis calls, dispatch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketHandler

from roomd import protocol
from roomd.bus import BusMessage
from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.domain.store import Replaced, Resumed, Snapshot
from roomd.domain.tokens import bearer_token
from roomd.protocol import CloseCode, ErrorCode
from roomd.transport import frames
from roomd.transport.commands import Caller, Command
from roomd.transport.context import Services
from roomd.transport.origins import origin_allowed
from roomd.transport.rate import TokenBucket
from roomd.transport.session import Session

log = logging.getLogger("roomd.ws")

_CONNECT_CLOSE = {
    ErrorCode.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ErrorCode.ROOM_NOT_FOUND: CloseCode.NOT_FOUND,
    ErrorCode.MEMBER_NOT_FOUND: CloseCode.NOT_FOUND,
}


_UNSEEN = object()
CLOSE_GRACE = 2.0  # seconds a decided close waits for the replies of the member's own commands
MAX_SINCE_DIGITS = 15


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json would accept them


def _state_frame(snapshot: Snapshot) -> bytes:
    data = {"room": snapshot.room, "users": snapshot.users, "state": snapshot.state}
    return frames.encode("room:state", data, snapshot.seq)


def _parse_since(raw: str | None) -> int | None:
    """``?since=<seq>``: a non-negative integer, else ignored (the client gets ``room:state``)."""
    if raw is None or not raw.isdigit() or len(raw) > MAX_SINCE_DIGITS:
        return None
    return int(raw)


class RoomSocket(WebSocketHandler):
    room_code: str = ""
    user_id: str = ""
    socket_id: str = ""

    def initialize(self, services: Services, commands: dict[str, Command]) -> None:
        self.services = services
        self.commands = commands
        self.session: Session | None = None  # created once the token names the member
        self._subscribed = False
        self._connected = False
        self._closed = False  # set by on_close, which may run while open() awaits Redis
        self._bucket = TokenBucket(services.settings.ws_rate_limit, services.settings.ws_rate_burst)
        self._max_buffer = services.settings.ws_max_buffer_bytes

    # -- handshake ----------------------------------------------------------

    def _request_summary(self) -> str:
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"  # never ?token=

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.services.settings.cors_origins, self.request.host)

    def get_compression_options(self) -> None:
        return None  # broadcasts are pre-framed once; compression would be per socket

    async def open(self, *args: str, **kwargs: str) -> None:
        services = self.services
        if services.draining:
            self.close(CloseCode.GOING_AWAY, CloseCode.GOING_AWAY.name)
            return
        token = bearer_token(self.request.headers.get("Authorization")) or self.get_query_argument("token", None)
        try:
            claims = services.tokens.verify(token)
        except DomainError as exc:
            self._fail(exc.code, CloseCode.UNAUTHORIZED, exc.message)
            return
        self.room_code, self.user_id = claims.room_code, claims.user_id
        self.socket_id = secrets.token_hex(8)
        self.session = Session(self.user_id, self.socket_id, self)
        since = _parse_since(self.get_query_argument("since", None))
        stream = self.ws_connection.stream if self.ws_connection else None
        if stream is not None:
            stream.set_nodelay(True)
        services.hub.add(self)
        try:
            await services.bus.acquire(self.room_code)
            self._subscribed = True
            if self._closed:  # the peer left while we subscribed: on_close could not release
                services.bus.release(self.room_code)
                return
            first = await services.store.connect_since(self.room_code, self.user_id, self.socket_id, since)
        except DomainError as exc:
            self._fail(exc.code, _CONNECT_CLOSE.get(exc.code, CloseCode.NOT_FOUND), exc.message)
            return
        except (StoreUnavailable, TimeoutError):
            services.metrics.redis_errors.inc()
            log.warning("connect failed: Redis unavailable")
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
        if isinstance(first, Resumed):
            resumed = frames.encode("room:resumed", {"since": first.since, "seq": first.seq})
            self.session.apply_resumed(resumed, first.messages, first.seq)
        else:
            self.session.apply_snapshot(_state_frame(first), first.seq)

    async def resync(self) -> None:
        """Send a fresh ``room:state`` after the bus may have lost events (pub/sub reconnect)."""
        if self.session is not None and self.session.begin_resync():
            await self._read_snapshot()

    async def _read_snapshot(self) -> None:
        """Re-read ``room:state`` for the session (events meanwhile are queued by it)."""
        try:
            snapshot = await self.services.store.snapshot(self.room_code, self.user_id, self.socket_id)
        except Replaced:
            self.close(CloseCode.REPLACED, CloseCode.REPLACED.name)
        except DomainError as exc:
            self._fail(exc.code, CloseCode.NOT_FOUND, exc.message)
        except StoreUnavailable:
            # The session cannot go live without it: the client reconnects (with since).
            self.services.metrics.redis_errors.inc()
            self._fail(ErrorCode.REDIS_UNAVAILABLE, CloseCode.INTERNAL_ERROR, ErrorCode.REDIS_UNAVAILABLE.message)
        else:
            if self.session is not None:
                self.session.apply_snapshot(_state_frame(snapshot), snapshot.seq)

    # -- the session's sink ------------------------------------------------------

    def write_wire(self, wire: bytes) -> None:
        self._write_wire(wire)

    def close_with(self, code: CloseCode) -> None:
        self.close(code, code.name)

    def closing(self, code: CloseCode) -> None:
        """A close waits for our own replies, but not for ever (a lost ack must not keep it open)."""
        IOLoop.current().call_later(CLOSE_GRACE, self.close_with, code)

    def want_snapshot(self) -> None:
        self.services.spawn(self._read_snapshot())

    def wait_for_room(self, waiting: bool) -> None:
        self.services.hub.wait(self, waiting)

    def _fail(self, code: ErrorCode, close_code: CloseCode, message: str) -> None:
        if self.session is not None:
            self.session.closed()
        self._send(frames.error(code.value, message))
        self.close(close_code, code.value)

    # -- bus events -----------------------------------------------------------

    def deliver(self, msg: BusMessage, wire: bytes) -> None:
        """One room event for this member (called by the hub, same bytes for all)."""
        if self.session is not None:
            self.session.deliver(msg, wire)

    def observe(self, seq: int) -> None:
        if self.session is not None:
            self.session.observe(seq)

    def _send(self, payload: bytes) -> None:
        self._write_wire(frames.wire(payload))

    def _write_wire(self, wire: bytes) -> None:
        """Queue a complete frame; a client that stopped reading is cut off, not buffered for ever.

        Tornado's write buffer is unbounded: past WS_MAX_BUFFER_BYTES of unsent
        data the socket is closed with 4408 (the client may reconnect), so one
        slow consumer costs bounded memory and never delays its room.
        """
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        stream = conn.stream
        if len(stream._write_buffer) + len(wire) > self._max_buffer:  # tornado has no public accessor
            log.info("closing a slow consumer (room %s): %d bytes unsent", self.room_code, len(stream._write_buffer))
            self.close(CloseCode.SLOW_CONSUMER, CloseCode.SLOW_CONSUMER.name)
            return
        if not stream._write_buffer and type(stream) is IOStream:
            # Nothing queued: hand the frame to the kernel directly. Tornado's write
            # path (buffer, future, handler) costs more than the send(2) itself, and
            # fan-out does this once per member per event. Plain sockets only (TLS
            # streams must encrypt); whatever the kernel does not take is queued below.
            try:
                sent = stream.socket.send(wire)
            except BlockingIOError:
                sent = 0
            except OSError:
                return  # the connection is broken; Tornado's read side will close it
            if sent == len(wire):
                return
            wire = wire[sent:]
        with contextlib.suppress(StreamClosedError):
            stream.write(wire)

    # -- client frames --------------------------------------------------------

    async def on_message(self, message: str | bytes) -> None:
        if not self._bucket.take():
            self.services.metrics.rate_limited.labels("ws").inc()
            if self._bucket.flooding:
                self._fail(ErrorCode.RATE_LIMITED, CloseCode.RATE_LIMITED, "Too many messages; closing")
            else:
                self._reply(frames.error(ErrorCode.RATE_LIMITED.value, "Too many messages; slow down"))
            return
        if isinstance(message, bytes):
            self._reply(frames.error(ErrorCode.INVALID_MESSAGE.value, "Frames must be JSON text frames"))
            return
        try:
            frame = json.loads(message, parse_constant=_no_constant)
        except ValueError:
            self._reply(frames.error(ErrorCode.INVALID_MESSAGE.value, "The frame is not valid JSON"))
            return
        if not isinstance(frame, dict):
            self._reply(frames.error(ErrorCode.INVALID_MESSAGE.value, "A frame must be a JSON object"))
            return
        msg_id = frame.get("id")
        if isinstance(msg_id, bool) or not isinstance(msg_id, str | int):
            msg_id = None
        event = frame.get("event")
        if not isinstance(event, str):
            self._reply(frames.error(ErrorCode.INVALID_MESSAGE.value, "event: must be a string", msg_id=msg_id))
            return
        command = self.commands.get(event)
        if command is None:
            self._reply(frames.error(ErrorCode.UNKNOWN_EVENT.value, f"Unknown event {event[:64]!r}", msg_id=msg_id,
                                    event=event[:64]))  # fmt: skip
            return
        # The event's schema validates the whole frame (envelope included), compiled at start.
        problem = command.verdicts.get(message, _UNSEEN)
        if problem is _UNSEEN:
            problem = protocol.first_error(command.validator, frame)
            command.remember(message, problem)
        if problem is not None:
            self._reply(frames.error(ErrorCode.INVALID_MESSAGE.value, problem, msg_id=msg_id, event=event))
            return
        session = self.session
        if session is None:
            return
        session.command_started()
        try:
            seq = await command.handler(
                self.services.store, Caller(self.room_code, self.user_id), frame.get("data") or {}
            )
            if msg_id is not None:
                session.reply(frames.ack(msg_id, seq), seq)  # after the frames up to seq this member receives
        except DomainError as exc:
            self._reply(frames.error(exc.code.value, exc.message, msg_id=msg_id, event=event, extra=exc.data))
        except StoreUnavailable:
            self._reply(
                frames.error(
                    ErrorCode.REDIS_UNAVAILABLE.value, ErrorCode.REDIS_UNAVAILABLE.message, msg_id=msg_id, event=event
                )
            )
        except Exception:
            log.exception("event %s failed (room %s)", event, self.room_code)
            self._reply(
                frames.error(ErrorCode.UNKNOWN_ERROR.value, ErrorCode.UNKNOWN_ERROR.message, msg_id=msg_id, event=event)
            )
        finally:
            session.command_finished()

    def _reply(self, payload: bytes) -> None:
        """An answer to a client frame: in order with the acks still waiting for their events."""
        if self.session is not None:
            self.session.reply(payload)
        else:
            self._send(payload)

    # -- teardown -------------------------------------------------------------

    def on_close(self) -> None:
        self._closed = True
        if self.session is not None:
            self.session.closed()
        services = self.services
        services.hub.remove(self)
        if self._subscribed:
            services.bus.release(self.room_code)
        if self._connected:
            services.spawn(self._mark_disconnected())

    async def _mark_disconnected(self) -> None:
        try:
            await self.services.store.disconnect(self.room_code, self.user_id, self.socket_id)
        except StoreUnavailable:
            log.warning("could not mark a user disconnected: Redis unavailable")


async def resync_rooms(services: Services, rooms: list[str]) -> None:
    """After a pub/sub reconnect: resend ``room:state`` to every local socket of ``rooms``.

    Every session starts buffering at once (before any snapshot is read), so no
    socket can receive a live event and then an older ``room:state``.
    """
    sockets = [sock for code in rooms for sock in services.hub.sockets(code) if isinstance(sock, RoomSocket)]
    due = [sock for sock in sockets if sock.session is not None and sock.session.begin_resync()]
    for sock in due:
        await sock._read_snapshot()
