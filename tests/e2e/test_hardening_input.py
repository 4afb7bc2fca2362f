"""Hostile input (issue 10, items 1.3 and 1.7): every bad frame or request gets its documented answer.

Deeply nested JSON, lone surrogates, NaN/Infinity, floats for integers, unknown static
files, wrong methods and non-upgrade requests to ``/ws``: the socket stays open with
``error:room INVALID_MESSAGE``, HTTP answers the documented JSON error with an
``X-Request-Id``, and nothing (tracebacks included) writes a token to the log.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from roomd import protocol
from roomd.app import build_services, make_app
from roomd.config import from_env
from roomd.logs import TextFormatter
from roomd.protocol import ErrorCode
from roomd.transport.commands import Command
from roomd.transport.websocket import RoomSocket
from tests.support.clients import Api, Socket, http
from tests.support.processes import TEST_SECRET, RoomdProcess

ERROR_SCHEMA = protocol.validator("http/error.response.json")
DEEP = 1000


def assert_json_error(r: Any, status: int, code: str) -> None:
    assert r.status == status, (r.status, r.body)
    assert isinstance(r.body, dict), r.body
    assert protocol.first_error(ERROR_SCHEMA, r.body) is None, r.body
    assert r.body["statusCode"] == status and r.body["code"] == code and r.body["message"], r.body
    assert r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"]
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", r.headers.get("X-Request-Id", "")), r.headers


def assert_log_is_clean(server: RoomdProcess, token: str) -> None:
    text = server.logs()
    assert token not in text
    assert token.split(".")[0] not in text  # not even the JWT header
    leaked = [v for v in re.findall(r"token=([^&\s\"']*)", text) if v != "REDACTED"]
    assert not leaked, leaked
    assert "Traceback" not in text, text[-3000:]


async def marker(sock: Socket, expect_locked: bool) -> None:
    """A toggle: its answer proves every frame sent before it was handled and the socket is open."""
    await sock.send("room:toggle_lock", msg_id="marker")
    frame = await sock.next_event()
    assert (frame["event"], frame["data"]) == ("room:lock_toggled", {"isLocked": expect_locked}), frame
    assert await sock.next_event() == {"event": "ack", "data": {"id": "marker", "seq": frame["seq"]}}


async def expect_invalid(sock: Socket, raw: str, msg_id: str | int | None = None) -> str:
    await sock.send_raw(raw)
    frame = await sock.next_event()
    assert frame["event"] == "error:room", frame
    assert frame["data"]["code"] == "INVALID_MESSAGE", frame
    assert frame["data"].get("id") == msg_id, frame
    return frame["data"]["message"]


async def test_nested_json_is_invalid_message_and_never_logs_the_token(spawn_roomd) -> None:
    server: RoomdProcess = spawn_roomd()
    api = Api(server.http)
    host = await api.create("Host")
    sock = await Socket.connect(server.ws, host["token"], query=True)  # the token in ?token=
    await sock.expect("room:state")
    nest = "[" * DEEP + "]" * DEEP
    frames = [
        "[" * DEEP,
        nest,
        "{" * DEEP,
        '{"event":"room:kick","data":{"kickUserId":' + nest + "}}",
        '{"event":"room:kick","data":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
        '{"event":"room:toggle_lock","id":' + nest + "}",
        '{"event":"room:kick","data":{"kickUserId":' + "[" * 400 + "]" * 400 + "}}",  # parses; too deep to keep
        '{"event":' + nest + "}",
    ]
    for raw in frames:
        message = await expect_invalid(sock, raw)
        assert len(message) < 300, message
    await marker(sock, True)
    for path in ("/rooms", f"/rooms/{host['roomCode']}/join"):
        for body in ("[" * DEEP, '{"displayName":' + nest + "}", '{"displayName":"A","maxUsers":' + nest + "}"):
            assert_json_error(await http(server.http, "POST", path, raw=body.encode()), 400, "INVALID_BODY")
    await marker(sock, False)
    assert_log_is_clean(server, host["token"])


async def test_lone_surrogates_are_refused_paired_ones_accepted(api: Api, roomd: RoomdProcess) -> None:
    host = await api.create("Host")
    sock = await Socket.connect(roomd.ws, host["token"])
    await sock.expect("room:state")
    for raw in (
        r'{"event":"room:kick","data":{"kickUserId":"\ud800"}}',
        r'{"event":"room:transfer_host","data":{"newHostId":"a\udfffb"}}',
        r'{"event":"room:toggle_lock","id":"\ud800"}',  # an id that cannot be echoed
        r'{"event":"room:\ud800"}',  # an event name that cannot be echoed
        r'{"event":"room:toggle_lock","data":{"\ud800":1}}',  # in a key
        r'{"event":"room:kick","data":{"kickUserId":"\ude00\ud83d"}}',  # reversed pair
    ):
        assert "surrogate" in await expect_invalid(sock, raw)
    await marker(sock, True)
    # A paired surrogate escape is an ordinary character (here an emoji).
    await sock.send_raw(r'{"event":"room:kick","id":7,"data":{"kickUserId":"\ud83d\ude00"}}')
    frame = await sock.next_event()
    assert frame["data"]["code"] == "MEMBER_NOT_FOUND" and frame["data"]["id"] == 7, frame
    for path in ("/rooms", f"/rooms/{host['roomCode']}/join"):
        r = await http(api.base, "POST", path, raw=rb'{"displayName":"Ana\ud800"}')
        assert_json_error(r, 400, "INVALID_BODY")
        assert "surrogate" in r.body["message"]
    r = await http(api.base, "POST", "/rooms", raw=rb'{"displayName":"Ana \ud83d\ude00"}')
    assert r.status == 201, r.body
    await marker(sock, False)


async def test_nan_infinity_and_floats_for_integers_are_refused(api: Api, roomd: RoomdProcess) -> None:
    for value, words in (
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "Infinity"),
        ("1e400", "finite"),
        ("2.0", "integer"),
        ("4.5", "integer"),
    ):
        r = await http(api.base, "POST", "/rooms", raw=f'{{"displayName":"Ana","maxUsers":{value}}}'.encode())
        assert_json_error(r, 400, "INVALID_BODY")
        assert words in r.body["message"], r.body
    r = await http(api.base, "POST", "/rooms", raw=b'{"displayName":"Ana","maxUsers":2}')
    assert r.status == 201, r.body
    host = r.body
    sock = await Socket.connect(roomd.ws, host["token"])
    await sock.expect("room:state")
    assert "NaN" in await expect_invalid(sock, '{"event":"room:toggle_lock","id":NaN}')
    assert "Infinity" in await expect_invalid(sock, '{"event":"room:toggle_lock","data":{"x":-Infinity}}')
    assert "integer" in await expect_invalid(sock, '{"event":"room:toggle_lock","id":2.0}')
    await marker(sock, True)


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request over a plain socket: paths and methods exactly as written, no client normalising."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_every_error_is_the_documented_json(api: Api, roomd: RoomdProcess) -> None:
    cases = [
        ("GET", "/static/nope", 404, "NOT_FOUND"),
        ("GET", "/client/nope.js", 404, "NOT_FOUND"),
        ("GET", "/static/../setup.py", 404, "NOT_FOUND"),
        ("GET", "/static/%2e%2e/setup.py", 404, "NOT_FOUND"),
        ("POST", "/static/lobby.css", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/metrics", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/ws", 426, "UPGRADE_REQUIRED"),
        ("POST", "/ws", 405, "METHOD_NOT_ALLOWED"),
    ]
    for method, path, status, code in cases:
        request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        got, headers, body = await asyncio.to_thread(raw_request, roomd.port, request.encode())
        assert got == status, (method, path, got, body[:200])
        answer = json.loads(body)
        assert answer["statusCode"] == status and answer["code"] == code and answer["message"], (path, answer)
        assert protocol.first_error(ERROR_SCHEMA, answer) is None
        assert headers["content-type"].startswith("application/json"), (path, headers)
        assert headers.get("x-request-id"), (path, headers)
    r = await http(api.base, "GET", "/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert_json_error(r, 426, "UPGRADE_REQUIRED")  # no Sec-WebSocket-Key: Tornado's own refusal, made JSON
    host = await api.create("Host")  # a query token that is not UTF-8: refused like any bad token, after the upgrade
    sock = await Socket.connect(roomd.ws + "?token=%FF" + host["token"])
    assert (await sock.next_event())["data"]["code"] == "UNAUTHORIZED"
    assert await sock.closed() == 4401
    for ok in ("/", "/static/lobby.css", "/client/roomd.js"):
        r = await http(api.base, "GET", ok)
        assert r.status == 200, (ok, r.status)
    assert "allow" in {k.lower() for k in (await http(api.base, "POST", "/metrics")).headers}


async def test_invalid_utf8_in_the_path_is_not_called_a_body_error(api: Api) -> None:
    for method, path, status, code in (
        ("GET", "/rooms/%FF%FE", 404, "ROOM_NOT_FOUND"),
        ("POST", "/rooms/%C3%28/join", 404, "ROOM_NOT_FOUND"),
        ("GET", "/static/%FF", 404, "NOT_FOUND"),
        ("GET", "/nope/%FF", 404, "NOT_FOUND"),
    ):
        r = await http(api.base, method, path, raw=b'{"displayName":"A"}' if method == "POST" else None)
        assert_json_error(r, status, code)
        assert "body" not in r.body["message"].lower(), r.body


class _Exploding:
    """A validator that fails like a bug would, quoting the token it was given (as a careless message might)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def iter_errors(self, instance: object) -> Any:
        raise RuntimeError(f"validator bug while handling /ws?token={self.secret}")


async def test_an_unexpected_exception_answers_unknown_error_and_logs_no_token(redis_server, redis_client) -> None:
    """Faults injected into a real in-process roomd: the socket stays open, the log shows no token.

    ``room:toggle_lock``'s handler and ``room:kick``'s validator raise with the token in
    their message; the catch-alls answer ``UNKNOWN_ERROR`` (with the frame's id when it is
    known) and log a traceback that the log formatter scrubs.
    """
    settings = from_env({"ROOMD_ENV": "production", "JWT_SECRET": TEST_SECRET, "REDIS_URL": redis_server.url})
    services = build_services(settings, redis_server.url)
    app = make_app(services)
    commands = next(r.target_kwargs["commands"] for r in app.wildcard_router.rules if r.target is RoomSocket)
    created = await services.store.create_room("Host", 10)
    token = services.tokens.issue(created.room_code, created.user_id)

    async def failing_toggle(store: Any, caller: Any, data: Any) -> None:
        raise RuntimeError(f"handler bug for /ws?token={token}")

    commands["room:toggle_lock"] = Command(commands["room:toggle_lock"].validator, failing_toggle)
    commands["room:kick"] = Command(_Exploding(token), commands["room:kick"].handler)  # type: ignore[arg-type]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    try:
        await services.bus.start()
        sock = await Socket.connect(f"ws://127.0.0.1:{sockets[0].getsockname()[1]}/ws", token, query=True)
        await sock.expect("room:state")
        await sock.send("room:toggle_lock", msg_id="t1")
        frame = await sock.next_event()
        assert frame["data"] == {"code": "UNKNOWN_ERROR", "message": ErrorCode.UNKNOWN_ERROR.message, "id": "t1",
                                 "event": "room:toggle_lock"}, frame  # fmt: skip
        await sock.send("room:kick", {"kickUserId": "x"}, msg_id="k1")
        frame = await sock.next_event()
        assert frame["data"] == {"code": "UNKNOWN_ERROR", "message": ErrorCode.UNKNOWN_ERROR.message}, frame
        await sock.send("room:transfer_host", {"newHostId": "nobody"}, msg_id=3)  # still open, still served
        frame = await sock.next_event()
        assert frame["data"]["code"] == "MEMBER_NOT_FOUND" and frame["data"]["id"] == 3, frame
        assert sock.close_code is None
        sock.close()
        await sock.closed()
        for _ in range(500):  # teardown: let the server see the close and mark the user disconnected
            if not len(services.hub) and not services.tasks:
                break
            await asyncio.gather(*services.tasks, asyncio.sleep(0.01), return_exceptions=True)
    finally:
        root.removeHandler(handler)
        server.stop()
        await services.bus.close()
        await services.store.client.aclose()
    text = stream.getvalue()
    assert text.count("Traceback") == 2 and "handler bug" in text and "validator bug" in text, text
    assert token not in text and "eyJ" not in text, text
    assert "token=REDACTED" in text
