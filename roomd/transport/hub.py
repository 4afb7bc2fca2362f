"""Local sockets by room, and delivery of bus events to them.

The hub holds no room truth: only which sockets of this process belong to
which room, so a bus event can be written to them. Everything it delivers was
decided (and ordered) by a domain script in Redis.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from roomd.transport import frames

log = logging.getLogger("roomd.hub")


class LocalSocket(Protocol):
    """What the hub needs of a socket: its identity, and a non-blocking ``deliver``.

    ``socket_id`` is unique per connection (a user who reconnects gets a new
    one), so an old and a new socket of the same user can coexist while the
    old one is being replaced.
    """

    room_code: str
    user_id: str
    socket_id: str

    def deliver(self, meta: dict[str, Any], wire: bytes) -> None:
        """Apply one bus message: ``meta`` (``seq``, skip, direct, close) decides whether and
        how; ``wire`` is the frame already encoded once for every recipient. Must not block
        or raise: the hub calls it for every local member in turn, and an exception would
        cut delivery to the members after this one."""
        ...


class Hub:
    """This process's sockets grouped by room; the bus's ``deliver`` callback.

    Single-threaded (the event loop), so plain dicts suffice. ``received`` and
    ``delivered`` are plain counters read by the metrics collector at scrape
    time, which keeps the fan-out path free of metric calls.
    """

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, LocalSocket]] = {}
        self.received = 0  # bus messages for rooms with local sockets
        self.delivered = 0  # frames handed to local sockets

    def add(self, sock: LocalSocket) -> None:
        """Register a socket once it may receive its room's events."""
        self._rooms.setdefault(sock.room_code, {})[sock.socket_id] = sock

    def remove(self, sock: LocalSocket) -> None:
        """Forget a socket (idempotent); a room with no local socket left is dropped."""
        members = self._rooms.get(sock.room_code)
        if members is not None:
            members.pop(sock.socket_id, None)
            if not members:
                del self._rooms[sock.room_code]

    def sockets(self, code: str | None = None) -> list[LocalSocket]:
        """A copy of the local sockets of room ``code``, or of every room (safe to close while iterating)."""
        if code is not None:
            return list(self._rooms.get(code, {}).values())
        return [s for members in self._rooms.values() for s in members.values()]

    def rooms(self) -> list[str]:
        """Codes of the rooms with at least one local socket."""
        return list(self._rooms)

    def __len__(self) -> int:
        """Local sockets, all rooms together."""
        return sum(len(m) for m in self._rooms.values())

    def deliver(self, code: str, message: bytes) -> None:
        """Handle one bus message ``<meta JSON>\\n<frame JSON>`` for room ``code``.

        The frame is turned into WebSocket wire bytes once and the same bytes go
        to every local member: per-recipient encoding was the main avoidable
        cost of fan-out. Messages for rooms without local sockets are ignored.
        """
        members = self._rooms.get(code)
        if not members:
            return
        self.received += 1
        meta_raw, _, payload = message.partition(b"\n")
        meta = json.loads(meta_raw)
        wire = frames.wire(payload)
        for sock in list(members.values()):
            sock.deliver(meta, wire)
        self.delivered += len(members)
