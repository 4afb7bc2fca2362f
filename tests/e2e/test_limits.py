"""Connection limits: few file descriptors, half-sent headers, total and per-address caps.

A client needs no token to open TCP connections, so these limits are what keeps
one address (or a few) from taking every descriptor of the process. The flood
connections come from 127.0.0.1; the health and metrics probes from 127.0.0.2,
another client address on the loopback interface.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomd import config, listener, protocol
from roomd.app import build_services, make_app
from tests.support.clients import Api, Socket
from tests.support.processes import RoomdProcess

PROBE = "127.0.0.2"  # health and metrics come from another client address than the flood
HALF_HEADER = b"GET /health HTTP/1.1\r\nHost: roomd\r\n"  # the blank line that ends the header never comes


def half_header(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection that sends half a request header and then waits (the kernel accepts it)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.sendall(HALF_HEADER)
    return sock


def finish_request(sock: socket.socket) -> int:
    """Complete a half-sent header; the server answers and closes (Connection: close)."""
    sock.settimeout(10)
    sock.sendall(b"Connection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return int(data.split(b" ", 2)[1])


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server ends the connection (EOF or reset) within ``seconds``, sending nothing."""
    sock.settimeout(max(seconds, 0.01))
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def get(port: int, path: str, timeout: float = 5, source: str = PROBE) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def refused(port: int) -> dict[str, float]:
    status, text = get(port, "/metrics")
    assert status == 200
    found = re.findall(r'^roomd_connections_refused_total\{reason="(\w+)"\} (\S+)$', text, re.M)
    return {reason: float(value) for reason, value in found}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(process: RoomdProcess, seconds: float) -> float:
    assert process.process is not None
    before = cpu_seconds(process.process.pid)
    time.sleep(seconds)
    return cpu_seconds(process.process.pid) - before


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_half_header_flood_with_256_descriptors(spawn_roomd, sockets) -> None:
    """The attack of issue 10: ``ulimit -n 256`` and 300 half-sent headers from one address."""
    server = spawn_roomd(nofile=256, HTTP_HEADER_TIMEOUT_MS="3000")
    log_start = len(server.logs())
    started = time.monotonic()
    sockets += [half_header(server.port) for _ in range(300)]
    assert get(server.port, "/health")[0] == 200  # another client is served during the flood
    assert cpu_over(server, 1.5) < 0.5  # no busy loop (a spinning accept loop burns ~1.5 s here)
    assert get(server.port, "/health")[0] == 200
    # Every flood connection ends: over the per-address cap at once, the others at the header timeout.
    assert all(closed_within(sock, started + 20 - time.monotonic()) for sock in sockets)
    per_client = listener.default_max_per_client(listener.default_max_connections(256))  # 156 // 4 = 39
    assert refused(server.port).get("per_client") == 300 - per_client
    log = server.logs()[log_start:]
    assert len(log.splitlines()) < 20 and len(log) < 4000, log[-2000:]


def test_accept_backs_off_when_descriptors_run_out(spawn_roomd, sockets) -> None:
    """Caps above what ``ulimit -n`` allows: accept meets EMFILE, pauses and logs once."""
    server = spawn_roomd(
        nofile=256, MAX_CONNECTIONS="10000", MAX_CONNECTIONS_PER_CLIENT="0", HTTP_HEADER_TIMEOUT_MS="2000"
    )
    log_start = len(server.logs())
    sockets += [half_header(server.port) for _ in range(300)]
    assert cpu_over(server, 1.5) < 0.5
    # The header timeout frees descriptors; the connections waiting in the backlog are then served.
    assert get(server.port, "/health", timeout=20)[0] == 200
    log = server.logs()[log_start:]
    assert "EMFILE" in log
    assert len(log.splitlines()) < 20 and len(log) < 4000, log[-2000:]


def test_total_cap_closes_extra_connections_at_once(spawn_roomd, sockets) -> None:
    server = spawn_roomd(MAX_CONNECTIONS="20", MAX_CONNECTIONS_PER_CLIENT="0", HTTP_HEADER_TIMEOUT_MS="60000")
    held = [half_header(server.port, f"127.0.1.{i}") for i in range(1, 21)]
    extra = [half_header(server.port, f"127.0.2.{i}") for i in range(1, 6)]
    sockets += held + extra
    assert all(closed_within(sock, 10) for sock in extra)  # long before the 60 s header timeout
    assert [finish_request(sock) for sock in held] == [200] * 20  # held ones are served
    assert refused(server.port) == {"total": 5.0, "per_client": 0.0}


async def test_per_client_cap_spares_authenticated_websockets(spawn_roomd, sockets) -> None:
    server = spawn_roomd(MAX_CONNECTIONS_PER_CLIENT="3", HTTP_HEADER_TIMEOUT_MS="60000")
    api = Api(server.http)
    host = await api.create("Host")
    tokens = [host["token"]] + [(await api.join(host["roomCode"], f"P{i}"))["token"] for i in range(3)]
    members = [await Socket.connect(server.ws, token) for token in tokens]  # 4 > 3: they do not count
    for member in members:
        await member.expect("room:state")
    held = [half_header(server.port) for _ in range(3)]
    over = half_header(server.port)
    sockets += [*held, over]
    assert closed_within(over, 10)  # the 4th unauthenticated connection of 127.0.0.1, long before 60 s
    assert [finish_request(sock) for sock in held] == [200] * 3
    sockets.append(again := half_header(server.port))  # the held ones ended: room for a new one
    assert finish_request(again) == 200
    await members[0].send("room:toggle_lock")
    for member in members:  # the members' sockets were never closed
        assert await member.expect("room:lock_toggled") == {"isLocked": True}
    assert refused(server.port) == {"total": 0.0, "per_client": 1.0}
    for member in members:
        member.close()
        await member.closed()


def test_default_cap_follows_the_open_file_limit() -> None:
    assert listener.default_max_connections(256) == 256 - listener.RESERVED_DESCRIPTORS
    assert listener.default_max_connections(1_048_576) == 1_048_576 - listener.RESERVED_DESCRIPTORS
    assert listener.default_max_connections(50) >= 16  # a tiny limit still serves a few
    assert listener.default_max_per_client(156) == 39  # a quarter of the slots...
    assert listener.default_max_per_client(1_000_000) == 256  # ...up to 256


@pytest.mark.parametrize(
    ("name", "raw"),
    [("MAX_CONNECTIONS", "0"), ("MAX_CONNECTIONS", "many"), ("MAX_CONNECTIONS_PER_CLIENT", "-1"),
     ("HTTP_HEADER_TIMEOUT_MS", "0")],
)  # fmt: skip
def test_limit_settings_are_validated(name: str, raw: str) -> None:
    with pytest.raises(config.ConfigError, match=name):
        config.from_env({name: raw})


def test_limit_settings_defaults() -> None:
    settings = config.from_env({"MAX_CONNECTIONS": "auto"})
    assert settings.max_connections is None  # derived from RLIMIT_NOFILE at start
    assert settings.max_connections_per_client is None  # a quarter of max_connections, at most 256
    assert config.from_env({"MAX_CONNECTIONS_PER_CLIENT": "0"}).max_connections_per_client == 0  # no cap
    assert settings.http_header_timeout_ms == 5000
    assert config.from_env({"MAX_CONNECTIONS": "500"}).max_connections == 500


def test_protocol_files_are_read_when_the_app_is_built() -> None:
    """Not first on an error path, where the open may meet EMFILE."""
    protocol.codes.cache_clear()
    make_app(build_services(config.from_env({}), "redis://127.0.0.1:1/0"))  # connects to nothing yet
    assert protocol.codes.cache_info().currsize == 1
