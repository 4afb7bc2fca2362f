"""A fake systemd notification socket: what roomd tells systemd, and from which process.

systemd reads ``$NOTIFY_SOCKET`` datagrams and, with ``NotifyAccess=main`` (our units),
ignores any sent by another process than the main one. The fake socket asks the kernel for
each sender's credentials (SO_PASSCRED) so tests can check that too. A test proves that a
state was NOT sent by sending its own marker datagram through the same socket: datagrams
are queued in arrival order, so anything roomd sent before the marker comes out first.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Notification:
    state: bytes
    pid: int | None


class NotifySocket:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="roomd-notify-"))
        self.path = str(self.dir / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)

    def recv(self, timeout: float = 20) -> Notification:
        """The next datagram; raises TimeoutError when none arrives within ``timeout``."""
        self.sock.settimeout(timeout)
        data, ancillary, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(_CREDS.size))
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = _CREDS.unpack(payload[: _CREDS.size])[0]
        return Notification(data, pid)

    def next_state(self, timeout: float = 20, skip: tuple[bytes, ...] = (b"STATUS=", b"WATCHDOG=1")) -> Notification:
        """The next datagram that is not informational (STATUS=, WATCHDOG=1)."""
        deadline = time.monotonic() + timeout
        while True:
            note = self.recv(max(0.01, deadline - time.monotonic()))
            if not note.state.startswith(skip):
                return note

    def mark(self, text: str) -> bytes:
        """Queue a marker datagram behind everything roomd sent so far."""
        marker = f"MARKER={text}".encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.sendto(marker, self.path)
        return marker

    def until_marker(self, marker: bytes, timeout: float = 20) -> list[Notification]:
        """Every datagram queued before ``marker``."""
        seen: list[Notification] = []
        while True:
            note = self.recv(timeout)
            if note.state == marker:
                return seen
            seen.append(note)

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        self.dir.rmdir()
