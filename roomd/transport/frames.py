"""Server frames, encoded once.

A broadcast is encoded to a complete WebSocket frame (header + payload) once
and the same bytes are written to every local socket: per-recipient encoding
is the main avoidable cost of fan-out in CPython.
"""

from __future__ import annotations

import json
import struct
from typing import Any

_FIN_TEXT = 0x81


def encode(event: str, data: dict[str, Any], seq: int | None = None) -> bytes:
    """The JSON text of a server frame ``{"event", "data"}`` (``seq``: the room change it reports)."""
    frame: dict[str, Any] = {"event": event, "data": data}
    if seq is not None:
        frame["seq"] = seq
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()


def error(
    code: str,
    message: str,
    *,
    msg_id: str | int | None = None,
    event: str | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    data: dict[str, Any] = {"code": code, "message": message}
    if msg_id is not None:
        data["id"] = msg_id
    if event is not None:
        data["event"] = event
    if extra:
        data.update(extra)
    return encode("error:room", data)


def ack(msg_id: str | int, seq: int) -> bytes:
    return encode("ack", {"id": msg_id, "seq": seq})


def wire(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final text frame carrying ``payload`` (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", _FIN_TEXT, n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, n)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, n)
    return header + payload
