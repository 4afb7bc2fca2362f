"""How a frame reaches the kernel: the raw send, the bounded buffer, and Tornado's internals.

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

Both need ``IOStream._write_buffer``, a private attribute. This module is the one
place in roomd that touches it, and only for the Tornado versions listed in
:data:`TESTED_TORNADO` (``tests/unit/test_writer.py`` fails when the installed
Tornado leaves that range or changes the attribute). On any other version the
writer uses the public path only: every frame goes through ``IOStream.write``
and the slow-consumer bound is off, which is logged once at start.
"""

from __future__ import annotations

import contextlib
import logging

import tornado
from tornado.iostream import BaseIOStream, IOStream, StreamClosedError

log = logging.getLogger("roomd.ws")

TESTED_TORNADO = ((6, 6), (6, 6))
"""Tornado major.minor range (inclusive) whose ``BaseIOStream._write_buffer`` (``len()`` = unsent bytes,
falsy when empty) was checked; setup.py caps Tornado to it."""


def _internals_known() -> bool:
    major_minor = tuple(tornado.version_info[:2])
    if not TESTED_TORNADO[0] <= major_minor <= TESTED_TORNADO[1]:
        return False
    return "_write_buffer" in BaseIOStream.__init__.__code__.co_names


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
