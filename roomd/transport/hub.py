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
    room_code: str
    user_id: str
    socket_id: str

    def deliver(self, meta: dict[str, Any], wire: bytes) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, LocalSocket]] = {}
        self.received = 0  # bus messages for rooms with local sockets
        self.delivered = 0  # frames handed to local sockets

    def add(self, sock: LocalSocket) -> None:
        self._rooms.setdefault(sock.room_code, {})[sock.socket_id] = sock

    def remove(self, sock: LocalSocket) -> None:
        members = self._rooms.get(sock.room_code)
        if members is not None:
            members.pop(sock.socket_id, None)
            if not members:
                del self._rooms[sock.room_code]

    def sockets(self, code: str | None = None) -> list[LocalSocket]:
        if code is not None:
            return list(self._rooms.get(code, {}).values())
        return [s for members in self._rooms.values() for s in members.values()]

    def rooms(self) -> list[str]:
        return list(self._rooms)

    def __len__(self) -> int:
        return sum(len(m) for m in self._rooms.values())

    def deliver(self, code: str, message: bytes) -> None:
        """Handle one bus message ``<meta JSON>\\n<frame JSON>`` for room ``code``."""
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
