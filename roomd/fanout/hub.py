"""Local sockets by room, and delivery of bus messages to them.

The hub holds no room truth: only which sockets of this process belong to which
room, so a bus message can be handed to them. Everything it delivers was decided
(and ordered) by a domain script in Redis. It sits between the broker (below: it is
the broker's ``deliver`` and ``on_resubscribed``) and the transports (above: each
socket implements :class:`LocalSocket`), and knows neither Redis nor WebSocket:
the transport gives it ``prepare``, which turns a frame into the bytes its sockets
write (for WebSocket, a complete frame with its header).

An event for every member (the common case) is prepared once and the same bytes go
to every local socket of the room: per-recipient encoding was the main avoidable
cost of fan-out. An event with a recipient list (``to``: a private state entry, a
message to the host) goes to those users' sockets only, found through a per-user
index, so the other sockets never see it, not even in memory.

**Viewers** (a room's audience, up to 10,000 per room) are kept apart from the members
(``_Room.viewers``) and reached by the bus message's ``aud`` only: absent, the event is the
members' and the viewer loop is not even entered; 1, members as usual and every viewer; 2,
viewers only (``to`` = viewer ids). The viewer loop is the hot one of a big room: it calls
each viewer's bound ``deliver`` straight from a dict of them, nothing else per viewer.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from roomd.domain.bus_message import BusMessage, BusMessageError

log = logging.getLogger("roomd.hub")


def _same(frame: bytes) -> bytes:
    return frame


class LocalSocket(Protocol):
    """What the hub (and the server's drain and presence duties) need of a socket.

    ``socket_id`` is unique per connection (a user who reconnects gets a new one), so
    an old and a new socket of the same user can coexist while the old one is replaced.
    """

    room_code: str
    user_id: str  # a viewer's audience id
    socket_id: str
    viewer: bool  # a viewer of the room's audience (routed by ``aud``), not a member

    @property
    def registered(self) -> bool:
        """Connected in Redis as a member through this socket (its connect script ran) and still open.
        Always False for a viewer: viewers have no presence record nor socket-index entry."""

    def deliver(self, msg: BusMessage, wire: bytes) -> None:
        """One event for this socket's member (``to`` already applied); ``wire`` is the frame
        prepared once for every recipient. Must not block or raise: the hub calls it for every
        local member in turn, and an exception would cut delivery to the members after this one."""

    def observe(self, seq: int) -> None:
        """The room reached ``seq`` (called while the socket waits for it: pending acks)."""

    def begin_resync(self) -> Awaitable[None] | None:
        """The room's events may have been lost: start holding live events back *now*, and
        return the snapshot read to await (None if none is due: not live yet, or closing)."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the connection (drain: 1001; presence: a socket this instance no longer owns)."""


class _Room:
    __slots__ = ("inc", "seq", "sockets", "users", "viewer_ids", "viewers", "waiters")

    def __init__(self) -> None:
        self.sockets: dict[str, LocalSocket] = {}  # the members' sockets
        self.users: dict[str, list[LocalSocket]] = {}
        # Viewers: socket id -> the socket's bound ``deliver`` (the fan-out loop calls nothing else),
        # and audience id -> its sockets (for ``aud`` 2 with ``to``, and closes).
        self.viewers: dict[str, Callable[[BusMessage, bytes], None]] = {}
        self.viewer_ids: dict[str, list[LocalSocket]] = {}
        self.waiters: dict[str, LocalSocket] = {}
        self.seq = 0  # the highest seq this process has seen of the room (incarnation ``inc``)
        self.inc: str | None = None


class Hub:
    """This process's sockets grouped by room; the broker's ``deliver`` and ``on_resubscribed``.

    Single-threaded (the event loop), so plain dicts suffice. ``received`` and
    ``delivered`` are plain counters read by the metrics collector at scrape time,
    which keeps the fan-out path free of metric calls.
    """

    def __init__(self, prepare: Callable[[bytes], bytes] = _same) -> None:
        self._prepare = prepare
        self._rooms: dict[str, _Room] = {}
        self.received = 0  # bus messages for rooms with local sockets
        self.delivered = 0  # frames handed to local sockets

    def add(self, sock: LocalSocket) -> None:
        """Register a socket once it may receive its room's events (a viewer's ``deliver`` is read now)."""
        room = self._rooms.get(sock.room_code)
        if room is None:
            room = self._rooms[sock.room_code] = _Room()
        if sock.viewer:
            room.viewers[sock.socket_id] = sock.deliver
            room.viewer_ids.setdefault(sock.user_id, []).append(sock)
            return
        room.sockets[sock.socket_id] = sock
        room.users.setdefault(sock.user_id, []).append(sock)

    def remove(self, sock: LocalSocket) -> None:
        """Forget a socket (idempotent); a room with no local socket left is dropped."""
        room = self._rooms.get(sock.room_code)
        if room is None:
            return
        if sock.viewer:
            if room.viewers.pop(sock.socket_id, None) is None:
                return
            index = room.viewer_ids
        else:
            if room.sockets.pop(sock.socket_id, None) is None:
                return
            index = room.users
        room.waiters.pop(sock.socket_id, None)
        same_user = index.get(sock.user_id, [])
        if sock in same_user:
            same_user.remove(sock)
        if not same_user:
            index.pop(sock.user_id, None)
        if not room.sockets and not room.viewers:
            del self._rooms[sock.room_code]

    def wait(self, sock: LocalSocket, waiting: bool) -> None:
        """Have ``sock.observe(seq)`` called after every event of its room (while it awaits acks)."""
        room = self._rooms.get(sock.room_code)
        if room is None or (sock.socket_id not in room.sockets and sock.socket_id not in room.viewers):
            return
        if waiting:
            room.waiters[sock.socket_id] = sock
            # The event an ack waits for may have come already: a player's game:send to the
            # host reaches the host, not the sender, and often before the script's reply.
            if room.seq:
                sock.observe(room.seq)
        else:
            room.waiters.pop(sock.socket_id, None)

    def sockets(self, code: str | None = None) -> list[LocalSocket]:
        """A copy of the local sockets (members' and viewers') of room ``code``, or of every room
        (safe to close while iterating)."""
        rooms = list(self._rooms.values()) if code is None else [r for r in (self._rooms.get(code),) if r is not None]
        found: list[LocalSocket] = []
        for room in rooms:
            found += room.sockets.values()
            for same in room.viewer_ids.values():
                found += same
        return found

    def viewers(self, code: str | None = None) -> int:
        """Local viewer sockets of room ``code``, or of every room."""
        if code is None:
            return sum(len(room.viewers) for room in self._rooms.values())
        room = self._rooms.get(code)
        return len(room.viewers) if room is not None else 0

    def rooms(self) -> list[str]:
        """Codes of the rooms with at least one local socket."""
        return list(self._rooms)

    def __len__(self) -> int:
        """Local sockets, all rooms together."""
        return sum(len(room.sockets) + len(room.viewers) for room in self._rooms.values())

    def deliver(self, code: str, raw: bytes) -> None:
        """Hand one bus message of room ``code`` to its local sockets (the broker's ``deliver``).

        Decoded once, its frame prepared once, the same bytes to every recipient.
        Messages for rooms without local sockets are ignored; a malformed one is logged
        and dropped.
        """
        room = self._rooms.get(code)
        if room is None:
            return
        self.received += 1
        try:
            msg = BusMessage.decode(raw)
        except BusMessageError as exc:
            log.error("dropping a malformed bus message of room %s: %s", code, exc)
            return
        wire = self._prepare(msg.payload)
        aud = msg.aud
        if aud != 2:
            if msg.to is None:
                targets = list(room.sockets.values())
            else:
                users = room.users
                targets = [sock for user_id in msg.to if user_id in users for sock in users[user_id]]
            for sock in targets:
                sock.deliver(msg, wire)
            self.delivered += len(targets)
        if aud and room.viewers:
            self._to_viewers(room, msg, wire)
        if msg.seq is not None:
            if msg.inc != room.inc:  # a reused code: seqs start again
                room.inc, room.seq = msg.inc, 0
            room.seq = max(room.seq, msg.seq)
            if room.waiters:
                for sock in list(room.waiters.values()):
                    sock.observe(msg.seq)

    def _to_viewers(self, room: _Room, msg: BusMessage, wire: bytes) -> None:
        """``aud`` 1 (every viewer) or 2 (every viewer, or the viewers ``to`` names)."""
        if msg.aud == 2 and msg.to is not None:
            ids = room.viewer_ids
            chosen = [sock for vid in msg.to if vid in ids for sock in ids[vid]]
            for sock in chosen:
                sock.deliver(msg, wire)
            self.delivered += len(chosen)
            return
        delivers = list(room.viewers.values())  # a copy: a delivery may close (and remove) a viewer
        for deliver in delivers:
            deliver(msg, wire)
        self.delivered += len(delivers)

    async def resync(self, codes: list[str]) -> None:
        """The broker's ``on_resubscribed``: these rooms' events may have been lost; every local
        socket of them re-reads a snapshot.

        Every socket starts holding live events back at once, before any snapshot is
        read, so no socket can receive a live event and then an older ``room:state``.
        The reads then run one after another (a failover must not turn into a burst of
        snapshot reads against the new master).
        """
        due = [read for code in codes for sock in self.sockets(code) if (read := sock.begin_resync()) is not None]
        try:
            while due:
                try:
                    await due.pop(0)
                except Exception:
                    log.exception("resynchronising a socket failed")
        finally:
            for read in due:  # cancelled (shutdown): the reads not started never will be
                if inspect.iscoroutine(read):
                    read.close()
