"""writer.read_frames_fast: the chunked frame reader behaves exactly as Tornado's own loop.

Every scenario (raw client bytes, sent in pieces so the server sees frames split and
merged in every way) runs against a Tornado server with its stock receive loop and one
with roomd's; the messages the handler got, how the connection ended and every byte the
server sent back (pongs, close frames) must be identical.
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from roomd.transport import writer

MAX_MESSAGE = 100_000


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(s: str, **kw: Any) -> bytes:
    return frame(0x1, s.encode(), **kw)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


CLOSE = frame(0x8, struct.pack("!H", 1000) + b"bye")
BIG = "x" * 70_000
SCENARIOS: dict[str, list[bytes]] = {
    "three frames in one read": [text("a") + text("bb") + text("é😀"), CLOSE],
    "one frame byte by byte": [*pieces(text('{"event":"room:toggle_lock"}'), 1), CLOSE],
    "16-bit length, in chunks": [*pieces(text("y" * 300) + text("z"), 7), CLOSE],
    "64-bit length, in chunks": [*pieces(text(BIG), 4096), CLOSE],
    "a frame and a half, then the rest": [text("a") + text("b" * 200)[:50], text("b" * 200)[50:] + text("c"), CLOSE],
    "fragmented, ping in between": [
        text("part1-", fin=False),
        frame(0x9, b"ping!"),
        frame(0x0, b"part2-", fin=False),
        frame(0x0, b"end"),
        CLOSE,
    ],
    "binary": [frame(0x2, b"\x00\x01\xff"), CLOSE],
    "unmasked": [text("plain", mask=False), CLOSE],
    "many frames past the yield threshold": [b"".join(text(str(i) * 1000) for i in range(300)), CLOSE],
    "invalid UTF-8": [frame(0x1, b"\xff\xfe"), text("after")],
    "reserved bits": [text("a", rsv=0x40), text("after")],
    "continuation without a start": [frame(0x0, b"x"), text("after")],
    "a new message inside a fragmented one": [text("a", fin=False), text("b")],
    "fragmented control frame": [frame(0x9, b"p", fin=False)],
    "long control frame": [frame(0x9, b"p" * 126)],
    "too big": [text("k" * (MAX_MESSAGE + 1)), text("after")],
    "too big across fragments": [text("k" * 60_000, fin=False), frame(0x0, b"k" * 60_000), text("after")],
    "close with a reason": [text("last"), CLOSE, text("ignored")],
    "peer vanishes mid-frame": [text("whole"), text("cut short")[:5]],
}


async def _run(fast: bool, chunks: list[bytes]) -> tuple[list[Any], bytes | None]:
    events: list[Any] = []
    closed = asyncio.Event()

    class Handler(tornado.websocket.WebSocketHandler):
        def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
            proto = super().get_websocket_protocol()
            if fast:
                writer.read_frames_fast(proto)
            return proto

        def on_message(self, message: str | bytes) -> None:
            events.append(("message", message))

        def on_close(self) -> None:
            events.append(("close", self.close_code, self.close_reason))
            closed.set()

    app = tornado.web.Application([(r"/ws", Handler)], websocket_max_message_size=MAX_MESSAGE)
    listeners = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = listeners[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(listeners)
    reader, out = await asyncio.open_connection("127.0.0.1", port)
    try:
        out.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        try:
            for chunk in chunks:
                out.write(chunk)
                await out.drain()
                await asyncio.sleep(0.002)  # let the server read this piece on its own
            out.write_eof()
        except OSError:
            pass  # the server closed the connection: the rest is not sent
        await asyncio.wait_for(closed.wait(), 10)
        try:
            received: bytes | None = await asyncio.wait_for(reader.read(), 10)
        except OSError:
            received = None  # reset while unread data was in flight: what arrived is a race
    finally:
        out.close()
        server.stop()
    return events, received


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_same_behaviour_as_tornados_reader(name: str) -> None:
    assert writer.INTERNALS
    stock_events, stock_bytes = await _run(False, SCENARIOS[name])
    fast_events, fast_bytes = await _run(True, SCENARIOS[name])
    assert fast_events == stock_events
    if stock_bytes is not None and fast_bytes is not None:
        assert fast_bytes == stock_bytes
    assert stock_events, "the scenario should make the handler see something"


def test_only_plain_protocol_13_sockets_are_switched() -> None:
    assert writer.read_frames_fast(None) is None  # no protocol (a refused handshake): nothing to do
