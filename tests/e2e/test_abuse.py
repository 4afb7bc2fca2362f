"""Abuse resistance: HTTP and WebSocket rate limits, origin checks, slow consumers."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tornado.httpclient import HTTPClientError

from roomd.domain.keys import channel
from tests.support.clients import Api, Socket, http, inert_websocket
from tests.support.processes import RoomdProcess


async def test_http_rate_limit_is_shared_by_instances(spawn_roomd, redis_client) -> None:  # starts from a clean Redis
    env = {"THROTTLE_LIMIT": "5", "THROTTLE_TTL_MS": "60000"}
    a, b = spawn_roomd(**env), spawn_roomd(**env)
    statuses = []
    for i in range(8):
        r = await http((a if i % 2 else b).http, "GET", "/rooms/ZZZZ")
        statuses.append(r.status)
    assert statuses == [404] * 5 + [429] * 3
    r = await http(a.http, "GET", "/rooms/ZZZZ")
    assert r.body["code"] == "RATE_LIMITED" and r.body["statusCode"] == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert (await http(a.http, "GET", "/health")).status == 200  # exempt


async def test_forwarded_for_is_honoured_only_from_trusted_proxies(spawn_roomd, redis_client) -> None:
    trusting = spawn_roomd(THROTTLE_LIMIT="2", TRUST_PROXY="127.0.0.1")
    for client in ("203.0.113.1", "203.0.113.2"):  # distinct clients behind the proxy: separate budgets
        for _ in range(2):
            r = await http(trusting.http, "GET", "/rooms/ZZZZ", headers={"X-Forwarded-For": client})
            assert r.status == 404
    # A client cannot escape by prepending a fake hop: the proxy appended the real one last.
    r = await http(trusting.http, "GET", "/rooms/ZZZZ", headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.1"})
    assert r.status == 429
    untrusting = spawn_roomd(THROTTLE_LIMIT="2")
    for i in range(3):
        r = await http(untrusting.http, "GET", "/rooms/ZZZZ", headers={"X-Forwarded-For": f"203.0.113.{i}"})
    assert r.status == 429  # X-Forwarded-For ignored: everything counts against the socket peer


async def test_websocket_flood_is_limited_then_closed(spawn_roomd) -> None:
    server: RoomdProcess = spawn_roomd(WS_RATE_LIMIT="5", WS_RATE_BURST="5")
    api = Api(server.http)
    flooder = await api.create("Flood")
    fs = await Socket.connect(server.ws, flooder["token"])
    await fs.expect("room:state")
    calm = await api.create("Calm")
    cs = await Socket.connect(server.ws, calm["token"])
    await cs.expect("room:state")
    for _ in range(40):
        await fs.send("room:dance")
    codes = []
    while (frame := await fs.recv()) is not None:
        codes.append(frame["data"]["code"])
    assert "UNKNOWN_EVENT" in codes and "RATE_LIMITED" in codes
    assert fs.close_code == 4429
    await cs.send("room:toggle_lock")  # another room is unaffected
    assert await cs.expect("room:lock_toggled") == {"isLocked": True}


async def test_websocket_origin_is_checked(spawn_roomd) -> None:
    server: RoomdProcess = spawn_roomd(CORS_ORIGINS="https://games.example")
    host = await Api(server.http).create("Ana")
    with pytest.raises(HTTPClientError) as refused:
        await Socket.connect(server.ws, host["token"], headers={"Origin": "https://evil.example"})
    assert refused.value.code == 403
    assert refused.value.response is not None  # the documented JSON, not Tornado's plain text
    assert json.loads(refused.value.response.body)["code"] == "ORIGIN_NOT_ALLOWED"
    ok = await Socket.connect(server.ws, host["token"], headers={"Origin": "https://games.example"})
    await ok.expect("room:state")
    ok.close()
    engine = await Socket.connect(server.ws, host["token"])  # no Origin: a game engine, not a browser
    await engine.expect("room:state")
    r = await http(server.http, "GET", "/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = await http(server.http, "GET", "/health", headers={"Origin": "https://games.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://games.example"


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_slow_consumer_is_cut_off_and_memory_stays_bounded(spawn_roomd, redis_client) -> None:
    server: RoomdProcess = spawn_roomd(WS_MAX_BUFFER_BYTES="262144", WS_PING_INTERVAL="0")
    api = Api(server.http)
    host = await api.create("Host")
    reader = await api.join(host["roomCode"], "Reader")
    slow = await api.join(host["roomCode"], "Slow")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    rs = await Socket.connect(server.ws, reader["token"])
    await rs.expect("room:state")
    stuck = inert_websocket(server.port, slow["token"], receive_buffer=4096)
    try:
        await hs.expect("user:connected")
        await hs.expect("user:connected")
        assert server.process is not None
        rss_before = _rss_bytes(server.process.pid)
        big = {"user": {"id": "synthetic", "displayName": "x" * 16_000, "isConnected": False}}
        message = b"{}\n" + json.dumps({"event": "user:joined", "data": big}).encode()
        sent = 0
        for _ in range(40):  # ~20 MB pushed at a client that reads nothing
            async with redis_client.pipeline(transaction=False) as pipe:
                for _ in range(32):
                    pipe.publish(channel(host["roomCode"]), message)
                await pipe.execute()
            sent += 32
            for _ in range(32):  # the readers keep up
                assert (await rs.expect("user:joined"))["user"]["id"] == "synthetic"
                assert (await hs.expect("user:joined"))["user"]["id"] == "synthetic"
        growth = _rss_bytes(server.process.pid) - rss_before
        assert sent * len(message) > 20_000_000
        assert growth < 12_000_000, f"RSS grew by {growth} bytes"
        gone = await hs.expect("user:disconnected", timeout=15)
        assert gone["user"]["id"] == slow["userId"]
    finally:
        stuck.close()


async def test_oversized_headers_are_refused(api: Api, roomd: RoomdProcess) -> None:
    def send_big_headers() -> bytes:
        with socket.create_connection(("127.0.0.1", roomd.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            return sock.recv(1024)

    reply = await asyncio.to_thread(send_big_headers)
    assert not reply.startswith(b"HTTP/1.1 200")  # dropped before any handler ran
    assert (await http(api.base, "GET", "/health")).status == 200


async def _connect_or_refusal(url: str, token: str) -> Socket | HTTPClientError:
    try:
        return await Socket.connect(url, token, query=True)
    except HTTPClientError as refused:
        return refused


def _assert_429(refused: HTTPClientError, scope: str) -> None:
    """Refused before the upgrade, in the documented JSON, with Retry-After."""
    assert refused.code == 429, refused
    assert refused.response is not None
    body = json.loads(refused.response.body)
    assert body["statusCode"] == 429 and body["code"] == "RATE_LIMITED" and scope in body["message"], body
    assert 1 <= int(refused.response.headers["Retry-After"]) <= 3600
    assert refused.response.headers.get("X-Request-Id")


async def test_upgrade_flood_is_refused_and_the_room_sees_bounded_presence(spawn_roomd, redis_client) -> None:
    # A long window: the whole test sits in one throttle window (counts are exact).
    server: RoomdProcess = spawn_roomd(WS_CONNECT_LIMIT="14", WS_CONNECT_USER_LIMIT="3", THROTTLE_TTL_MS="3600000")
    api = Api(server.http)
    host = await api.create("Host")
    flood = await api.join(host["roomCode"], "Flood")
    other = await api.join(host["roomCode"], "Other")
    hs = await Socket.connect(server.ws, host["token"])  # 1 upgrade from this address
    await hs.expect("room:state")
    outcomes: list[int] = []
    for _ in range(10):  # a connect/close loop with one token
        got = await _connect_or_refusal(server.ws, flood["token"])
        if isinstance(got, HTTPClientError):
            _assert_429(got, "per user")
            outcomes.append(got.code)
            continue
        await got.expect("room:state")
        got.close()
        outcomes.append(101)
    assert outcomes == [101] * 3 + [429] * 7
    # The marker: every presence frame the loop caused was published before this toggle.
    await hs.send("room:toggle_lock")
    await hs.expect("room:lock_toggled")
    presence = [f for f in hs.received if f["event"] in ("user:connected", "user:disconnected")]
    assert all(f["data"]["user"]["id"] == flood["userId"] for f in presence)
    assert sum(f["event"] == "user:connected" for f in presence) == 3
    assert len(presence) <= 2 * 3, presence  # at most one connect and one disconnect per accepted upgrade
    # The address budget (14) is shared by every token: 1 + 10 counted so far.
    for _ in range(3):
        got = await _connect_or_refusal(server.ws, other["token"])
        assert isinstance(got, Socket), got
        await got.expect("room:state")
        got.close()
    refused = await _connect_or_refusal(server.ws, other["token"])
    assert isinstance(refused, HTTPClientError)
    _assert_429(refused, "per client address")
    await hs.send("room:toggle_lock")  # the connected member is untouched
    assert await hs.expect("room:lock_toggled") == {"isLocked": False}


async def test_a_polite_client_survives_a_redis_stall(spawn_roomd, private_redis) -> None:
    """Frames sent at half WS_RATE_LIMIT while Redis is paused are all handled after it, in order, socket open.

    Before: the first frame awaited Redis, Tornado read nothing more, and after the
    stall the queued frames were charged at once (4 frames in 1 ms) and the socket closed with 4429.
    """
    redis = private_redis()
    server: RoomdProcess = spawn_roomd(
        redis.url, WS_RATE_LIMIT="4", WS_RATE_BURST="2", REDIS_COMMAND_TIMEOUT="30000", WS_PING_INTERVAL="0"
    )
    host = await Api(server.http).create("Host")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    frames = 8
    redis.pause()
    try:
        for i in range(frames):  # 2 frames/s for 4 s: half the limit
            await hs.send("room:toggle_lock", msg_id=i)
            await asyncio.sleep(0.5)
    finally:
        redis.resume()
    states, acked = [], []
    while len(acked) < frames:
        frame = await hs.next_event(timeout=30)
        if frame["event"] == "ack":  # each after its own event
            acked.append(frame["data"]["id"])
            continue
        assert frame["event"] == "room:lock_toggled", frame  # no RATE_LIMITED, no error, no close
        states.append(frame["data"]["isLocked"])
    assert states == [True, False] * (frames // 2) and acked == list(range(frames))
    await hs.send("room:toggle_lock")
    assert await hs.expect("room:lock_toggled") == {"isLocked": True}
    assert hs.close_code is None


async def test_a_backlog_past_the_queue_is_answered_busy(spawn_roomd, private_redis) -> None:
    """While 32 frames of a socket wait (here for a paused Redis), the next ones are answered BUSY at once and
    not carried out; the 32 are then handled in order. It was REDIS_UNAVAILABLE, which blamed the store for a
    backlog that may be roomd's own."""
    redis = private_redis()
    server: RoomdProcess = spawn_roomd(
        redis.url, WS_RATE_LIMIT="1000", WS_RATE_BURST="1000", REDIS_COMMAND_TIMEOUT="30000", WS_PING_INTERVAL="0"
    )
    host = await Api(server.http).create("Host")
    hs = await Socket.connect(server.ws, host["token"])
    await hs.expect("room:state")
    queued, refused = 32, 5
    redis.pause()
    try:
        for i in range(queued + refused):
            await hs.send("room:toggle_lock", msg_id=i)
        busy = [await hs.next_event(timeout=10) for _ in range(refused)]  # at once, Redis still paused
    finally:
        redis.resume()
    assert [(f["event"], f["data"]["code"], f["data"]["id"]) for f in busy] == [
        ("error:room", "BUSY", i) for i in range(queued, queued + refused)
    ]
    acked, toggles = [], 0
    while len(acked) < queued:
        frame = await hs.next_event(timeout=30)
        if frame["event"] == "ack":
            acked.append(frame["data"]["id"])
        else:
            assert frame["event"] == "room:lock_toggled", frame
            toggles += 1
    assert acked == list(range(queued)) and toggles == queued  # the refused five changed nothing
    assert hs.close_code is None
