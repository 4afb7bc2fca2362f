"""End-to-end fixtures on top of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.clients import Socket
from tests.support.processes import RoomdProcess


@pytest.fixture(autouse=True)
def close_clients_before_servers(spawn_roomd: Callable[..., RoomdProcess]) -> Iterator[None]:
    """Close the test's client sockets before its roomd processes are stopped.

    A Tornado client that holds unread frames stops reading (its queue holds one
    message), so it never answers the server's close frame: a draining roomd then
    waits Tornado's 5 s close timeout per socket. Closing from the client side
    first keeps teardown instant. (Depending on ``spawn_roomd`` orders this
    fixture's teardown before that one's.)
    """
    yield
    sockets, Socket.opened[:] = list(Socket.opened), []
    for sock in sockets:
        sock.close()
