"""How a frame reaches the kernel and how client frames come out of it: Tornado's internals.

Fan-out writes the same pre-built frame to every member's socket, so this is the
hottest code in roomd after the Redis round trip. Two facts shape it:

* Tornado's write path (append to the stream's buffer, a Future, the IOLoop
  handler) costs more than the ``send(2)`` itself. When nothing is queued, the
  frame is handed to the kernel directly and only what it does not take is queued
  through the public ``IOStream.write``.
* Tornado's write buffer is unbounded, and it offers no public way to read its
  size. A client that stops reading would grow roomd's memory for ever, so the
  writer refuses a frame that would take the unsent bytes past a bound and the
  caller closes the socket (4408, the client may reconnect).

Both need ``IOStream._write_buffer``, a private attribute. On the receive side,
Tornado reads each client frame in three or four awaited ``read_bytes``;
:func:`read_frames_fast` swaps its receive loop for one that cuts frames out of
whatever the kernel returned in one read (measured: ~-30% CPU per small frame),
which needs the protocol's private frame state.

This module is the one place in roomd that touches Tornado internals, and only
for the Tornado versions listed in :data:`TESTED_TORNADO` (``tests/unit/test_writer.py``
fails when the installed Tornado leaves that range or changes the attributes;
``tests/unit/test_frame_reader.py`` runs the same raw client bytes through both
receive loops and asserts identical behaviour). On any other version roomd uses
the public paths only: every frame goes through ``IOStream.write``, the
slow-consumer bound is off (logged once at start) and Tornado reads its frames itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import types

import tornado
from tornado.iostream import BaseIOStream, IOStream, StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketProtocol, WebSocketProtocol13

log = logging.getLogger("roomd.ws")

TESTED_TORNADO = ((6, 6), (6, 6))
"""Tornado major.minor range (inclusive) whose ``BaseIOStream._write_buffer`` (``len()`` = unsent bytes,
falsy when empty) was checked; setup.py caps Tornado to it."""


_PROTOCOL_ATTRIBUTES = (
    "_fragmented_message_buffer",
    "_fragmented_message_opcode",
    "_decompressor",
    "_wire_bytes_in",
    "client_terminated",
    "close_code",
    "close_reason",
)


def _internals_known() -> bool:
    major_minor = tuple(tornado.version_info[:2])
    if not TESTED_TORNADO[0] <= major_minor <= TESTED_TORNADO[1]:
        return False
    init_names = WebSocketProtocol13.__init__.__code__.co_names + WebSocketProtocol.__init__.__code__.co_names
    return (
        "_write_buffer" in BaseIOStream.__init__.__code__.co_names
        and all(name in init_names for name in _PROTOCOL_ATTRIBUTES)
        and callable(getattr(WebSocketProtocol13, "_receive_frame_loop", None))
        and callable(getattr(WebSocketProtocol13, "_handle_message", None))
    )


INTERNALS = _internals_known()
if not INTERNALS:
    log.warning(
        "Tornado %s is not a version roomd's frame writer was checked against: slow-consumer protection is off",
        tornado.version,
    )


class Overflow(Exception):
    """The frame would take the socket's unsent bytes past the bound: close it as a slow consumer."""

    def __init__(self, unsent: int) -> None:
        super().__init__(unsent)
        self.unsent = unsent


def write(stream: IOStream, wire: bytes, max_unsent: int) -> None:
    """Write one complete frame to ``stream``; raise :class:`Overflow` instead of buffering past ``max_unsent``.

    A broken connection is not an error here: Tornado's read side notices it and
    closes the socket, which ends the session.
    """
    if INTERNALS:
        buffered = stream._write_buffer
        unsent = len(buffered)
        if unsent + len(wire) > max_unsent:
            raise Overflow(unsent)
        if not unsent and type(stream) is IOStream:  # plain sockets only: TLS streams must encrypt
            try:
                sent = stream.socket.send(wire)
            except BlockingIOError:
                sent = 0
            except OSError:
                return
            if sent == len(wire):
                return
            wire = wire[sent:]
    with contextlib.suppress(StreamClosedError):
        stream.write(wire)


# -- reading client frames ---------------------------------------------------------------

READ_CHUNK = 65536  # bytes asked of the stream per read: whatever has arrived, up to this
_YIELD_BYTES = 256 * 1024  # as Tornado: let other sockets run after this much input in one go
_FRAME_COST = 1024  # ...counting each frame as this many bytes (per-frame work dominates small frames)


def read_frames_fast(proto: WebSocketProtocol | None) -> None:
    """Have ``proto`` read client frames with :func:`_receive_frames` instead of Tornado's loop.

    Tornado reads a frame in three or four awaited ``read_bytes`` (header, length, mask,
    payload), each a Future and a pass through the stream's read machinery; for the small
    frames of games that is most of the receive cost. This loop takes whatever the kernel
    has in one read and cuts every complete frame out of it by hand; each message still goes
    through Tornado's own ``_handle_message`` (UTF-8, close, ping, pong, ``on_message``).
    Only for uncompressed protocol-13 sockets on checked Tornado versions; else nothing changes.
    """
    if INTERNALS and type(proto) is WebSocketProtocol13 and proto._decompressor is None:
        proto._receive_frame_loop = types.MethodType(_receive_frames, proto)  # type: ignore[method-assign]


async def _receive_frames(self: WebSocketProtocol13) -> None:
    """Tornado 6.6's ``_receive_frame_loop`` + ``_receive_frame``, reading in chunks (same checks, same order).

    ``buf[pos:]`` holds the bytes read but not yet cut into frames. When a frame's header is
    complete but not its payload, exactly the missing bytes are read next (one copy per
    large frame, never a re-copy per chunk).
    """
    stream = self.stream
    assert stream is not None
    max_size = self.params.max_message_size
    buf = b""
    pos = 0
    missing = 0  # bytes the incomplete frame at buf[pos:] still needs, when its header says
    work = 0
    try:
        while not self.client_terminated:
            if missing:
                chunk = await stream.read_bytes(missing)
            else:
                chunk = await stream.read_bytes(READ_CHUNK, partial=True)
            self._wire_bytes_in += len(chunk)
            buf = buf[pos:] + chunk if pos < len(buf) else chunk
            pos, end, missing = 0, len(buf), 0
            while end - pos >= 2:
                header, second = buf[pos], buf[pos + 1]
                is_final = header & 0x80
                opcode = header & 0x0F
                is_control = opcode & 0x8
                if header & 0x70:  # reserved bits: an extension nobody negotiated
                    self._abort()
                    return
                length = second & 0x7F
                if is_control and length >= 126:
                    self._abort()
                    return
                start = pos + 2
                if length == 126:
                    if end - start < 2:
                        break
                    length = struct.unpack_from("!H", buf, start)[0]
                    start += 2
                elif length == 127:
                    if end - start < 8:
                        break
                    length = struct.unpack_from("!Q", buf, start)[0]
                    start += 8
                fragments = self._fragmented_message_buffer
                if length + (len(fragments) if fragments is not None else 0) > max_size:
                    self.close(1009, "message too big")
                    self._abort()
                    return
                if second & 0x80:
                    if end - start < 4 + length:
                        missing = start + 4 + length - end
                        break
                    data = _websocket_mask(buf[start : start + 4], buf[start + 4 : start + 4 + length])
                    start += 4
                else:
                    if end - start < length:
                        missing = start + length - end
                        break
                    data = buf[start : start + length]
                pos = start + length
                work += _FRAME_COST + length
                if is_control:
                    if not is_final:
                        self._abort()
                        return
                elif opcode == 0:  # continuation
                    if fragments is None:
                        self._abort()
                        return
                    fragments.extend(data)
                    if not is_final:
                        continue
                    opcode = self._fragmented_message_opcode  # type: ignore[assignment]  # Tornado types it None
                    data = bytes(fragments)
                    self._fragmented_message_buffer = None
                else:
                    if fragments is not None:  # a new message before the last one ended
                        self._abort()
                        return
                    if not is_final:
                        self._fragmented_message_opcode = opcode  # type: ignore[assignment]
                        self._fragmented_message_buffer = bytearray(data)
                        continue
                handled = self._handle_message(opcode, data)
                if handled is not None:
                    await handled
                if self.client_terminated:
                    return
            if work >= _YIELD_BYTES:
                work = 0
                await asyncio.sleep(0)
    except StreamClosedError:
        self._abort()
    finally:
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)
