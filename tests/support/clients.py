"""Protocol clients for end-to-end tests: JSON over HTTP and the WebSocket event protocol."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from roomd import protocol


@dataclass
class Response:
    status: int
    body: Any
    headers: Any


async def http(base: str, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if payload is None and method in ("POST", "PUT", "PATCH"):
        payload = b""
    request = HTTPRequest(f"{base}{path}", method=method, body=payload, headers=headers or {},
                          allow_nonstandard_methods=True, request_timeout=10)  # fmt: skip
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    text = response.body.decode() if response.body else ""
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return Response(response.code, parsed, response.headers)


class Api:
    """The HTTP API of one roomd process."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def create(self, name: str = "Host", **extra: Any) -> dict[str, Any]:
        r = await http(self.base, "POST", "/rooms", {"displayName": name, **extra})
        assert r.status == 201, r.body
        return r.body

    async def join(self, code: str, name: str = "Player") -> dict[str, Any]:
        r = await http(self.base, "POST", f"/rooms/{code}/join", {"displayName": name})
        assert r.status == 201, r.body
        return r.body

    async def room(self, code: str) -> Response:
        return await http(self.base, "GET", f"/rooms/{code}")

    async def rejoin(self, code: str, token: str) -> Response:
        return await http(self.base, "POST", f"/rooms/{code}/rejoin", headers={"Authorization": f"Bearer {token}"})


_SERVER_SCHEMAS: dict[str, Any] = {}


def check_server_frame(frame: dict[str, Any]) -> None:
    """Every frame the server sends must match its schema in protocol/."""
    event = frame.get("event")
    assert isinstance(event, str), frame
    if event not in _SERVER_SCHEMAS:
        _SERVER_SCHEMAS[event] = protocol.validator(f"server/{event.replace(':', '.')}.json")
    problem = protocol.first_error(_SERVER_SCHEMAS[event], frame)
    assert problem is None, f"{event} violates its schema: {problem}: {frame}"


class Socket:
    """A WebSocket client that validates every received frame against the protocol."""

    opened: list[Socket] = []  # closed by the ``close_sockets`` fixture after each test

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.received: list[dict[str, Any]] = []
        Socket.opened.append(self)

    @classmethod
    async def connect(cls, ws_url: str, token: str | None = None, *, query: bool = False,
                      headers: dict[str, str] | None = None) -> Socket:  # fmt: skip
        hdrs = dict(headers or {})
        url = ws_url
        if token is not None and query:
            url = f"{ws_url}?token={token}"
        elif token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        conn = await websocket_connect(HTTPRequest(url, headers=hdrs, request_timeout=10))
        return cls(conn)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The next frame, or None once the server closed the socket."""
        message = await asyncio.wait_for(self.conn.read_message(), timeout)
        if message is None:
            return None
        frame = json.loads(message)
        check_server_frame(frame)
        self.received.append(frame)
        return frame

    async def expect(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        """Skip frames until ``event``; fail on close or timeout."""
        while True:
            frame = await self.recv(timeout)
            assert frame is not None, f"closed ({self.close_code}) while waiting for {event}"
            if frame["event"] == event:
                return frame["data"]

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame is not None, f"closed ({self.close_code})"
        return frame

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Drain until the server closes; the close code."""
        while await self.recv(timeout) is not None:
            pass
        return self.close_code

    async def silent(self, seconds: float = 0.3) -> bool:
        """True if nothing arrives for ``seconds``."""
        try:
            frame = await self.recv(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {frame}")

    async def send(self, event: str, data: dict[str, Any] | None = None, msg_id: str | int | None = None) -> None:
        frame: dict[str, Any] = {"event": event}
        if data is not None:
            frame["data"] = data
        if msg_id is not None:
            frame["id"] = msg_id
        await self.conn.write_message(json.dumps(frame))

    async def send_raw(self, message: str | bytes, binary: bool = False) -> None:
        await self.conn.write_message(message, binary=binary)

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    def close(self) -> None:
        self.conn.close()


def inert_websocket(port: int, token: str, receive_buffer: int | None = None) -> socket.socket:
    """A raw peer that completes the WebSocket handshake, then never reads nor answers pings.

    ``receive_buffer`` shrinks the kernel's receive buffer so that unread data
    backs up into the server quickly (a slow consumer).
    """
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in sock.recv(1024).split(b"\r\n")[0]
    return sock


def member_view(sock: Socket) -> set[str]:
    """Member ids as this client knows them: its last ``room:state`` plus the joins after it."""
    frames = sock.received
    last = max(i for i, f in enumerate(frames) if f["event"] == "room:state")
    members = {u["id"] for u in frames[last]["data"]["users"]}
    for frame in frames[last + 1 :]:
        if frame["event"] == "user:joined":
            members.add(frame["data"]["user"]["id"])
    return members
