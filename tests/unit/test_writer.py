"""The frame writer: the one place roomd touches Tornado internals, and the test that fails when they change."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import tornado
from tornado.iostream import IOStream

from roomd.transport import writer


def test_the_installed_tornado_is_one_whose_internals_were_checked() -> None:
    """Fails on a Tornado release outside TESTED_TORNADO: re-check IOStream._write_buffer, then widen the range
    (and setup.py's cap) - else roomd silently runs without slow-consumer protection."""
    assert writer.TESTED_TORNADO[0] <= tuple(tornado.version_info[:2]) <= writer.TESTED_TORNADO[1], tornado.version
    assert writer.INTERNALS


@pytest.fixture
def pair() -> Iterator[tuple[IOStream, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = IOStream(ours)
    yield stream, peer
    stream.close()
    peer.close()


async def test_a_frame_goes_straight_to_the_kernel_when_nothing_is_queued(pair: tuple[IOStream, socket.socket]) -> None:
    stream, peer = pair
    writer.write(stream, b"\x81\x02hi", 1 << 20)
    assert len(stream._write_buffer) == 0  # nothing left for Tornado: the kernel took it all
    assert peer.recv(16) == b"\x81\x02hi"


async def test_unsent_bytes_are_bounded(pair: tuple[IOStream, socket.socket]) -> None:
    """A peer that stops reading: the kernel's buffers fill, then Tornado's, up to the bound, then Overflow."""
    stream, _peer = pair
    frame = b"x" * 1000
    with pytest.raises(writer.Overflow) as full:
        for _ in range(10_000):
            writer.write(stream, frame, 64_000)
    assert 63_000 <= full.value.unsent <= 64_000  # what Tornado holds, read through the internal attribute
    assert len(stream._write_buffer) == full.value.unsent
