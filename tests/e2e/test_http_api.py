"""The HTTP API over real HTTP against a real roomd process."""

from __future__ import annotations

import asyncio
import json
import re

import jwt
import pytest

from roomd import protocol
from roomd.domain.keys import layout
from tests.support.clients import Api, http
from tests.support.processes import TEST_SECRET, RoomdProcess

ERROR_SCHEMA = protocol.validator("http/error.response.json")
MEMBERSHIP_SCHEMA = protocol.validator("http/membership.response.json")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def state_keys(client) -> set[bytes]:
    """Every key but the rate limiter's counters and the live instances' own (heartbeats, socket indexes:
    the shared roomd writes them at any moment)."""
    ignored = (layout().throttle_prefix, layout().instances.removesuffix("instances"))
    return {k async for k in client.scan_iter() if not k.decode().startswith(ignored)}


def assert_error(r, status: int, code: str) -> None:
    assert r.status == status, r.body
    assert protocol.first_error(ERROR_SCHEMA, r.body) is None, r.body
    assert r.body["statusCode"] == status and r.body["code"] == code and r.body["message"]
    assert r.headers["Content-Type"].startswith("application/json")


async def test_create_room(api: Api) -> None:
    r = await http(api.base, "POST", "/rooms", {"displayName": "  Ana  ", "maxUsers": 4})
    assert r.status == 201 and protocol.first_error(MEMBERSHIP_SCHEMA, r.body) is None
    claims = jwt.decode(r.body["token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["roomCode"] == r.body["roomCode"] and claims["userId"] == r.body["userId"]
    room = (await api.room(r.body["roomCode"])).body
    assert room["hostId"] == r.body["userId"] and room["maxUsers"] == 4 and room["isLocked"] is False


async def test_get_room(api: Api) -> None:
    host = await api.create("Ana")
    r = await api.room(host["roomCode"].lower())
    assert r.status == 200
    assert {"code", "hostId", "isLocked", "maxUsers", "state", "createdAt", "updatedAt"} <= set(r.body)
    assert r.body["code"] == host["roomCode"] and r.body["maxUsers"] == 10
    assert ISO.match(r.body["createdAt"]) and ISO.match(r.body["updatedAt"])
    assert protocol.first_error(protocol.validator("room.json"), r.body) is None


@pytest.mark.parametrize("path", ["/rooms/ZZZZ", "/rooms/X:users", "/rooms/%20", "/rooms/toolongcode"])
async def test_unknown_rooms_are_404(api: Api, path: str) -> None:
    assert_error(await http(api.base, "GET", path), 404, "ROOM_NOT_FOUND")


async def test_join_room_case_insensitive(api: Api) -> None:
    host = await api.create("Ana")
    r = await http(api.base, "POST", f"/rooms/{host['roomCode'].lower()}/join", {"displayName": "Bob"})
    assert r.status == 201 and r.body["roomCode"] == host["roomCode"] and r.body["userId"] != host["userId"]
    assert (await api.room(host["roomCode"])).body["memberCount"] == 2


async def test_join_errors(api: Api) -> None:
    assert_error(await http(api.base, "POST", "/rooms/ZZZZ/join", {"displayName": "Bob"}), 404, "ROOM_NOT_FOUND")
    host = await api.create("Ana", maxUsers=2)
    await api.join(host["roomCode"], "Bob")
    full = await http(api.base, "POST", f"/rooms/{host['roomCode']}/join", {"displayName": "Cy"})
    assert_error(full, 400, "ROOM_FULL")


async def test_thirty_concurrent_joins_over_http(api: Api) -> None:
    host = await api.create("Host", maxUsers=10)
    path = f"/rooms/{host['roomCode']}/join"
    results = await asyncio.gather(*(http(api.base, "POST", path, {"displayName": f"P{i}"}) for i in range(30)))
    assert sorted(r.status for r in results) == [201] * 9 + [400] * 21
    assert {r.body["code"] for r in results if r.status == 400} == {"ROOM_FULL"}
    assert (await api.room(host["roomCode"])).body["memberCount"] == 10


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{bad json", 400, "INVALID_BODY"),
        (b"", 400, "INVALID_BODY"),
        (b"[]", 400, "INVALID_BODY"),
        (b'"Ana"', 400, "INVALID_BODY"),
        (b"{}", 400, "INVALID_BODY"),
        (b'{"displayName": 5}', 400, "INVALID_BODY"),
        (b'{"displayName": "Ana", "admin": true}', 400, "INVALID_BODY"),
        (b'{"displayName": "Ana", "maxUsers": "5"}', 400, "INVALID_BODY"),
        (b'{"displayName": "Ana", "maxUsers": 0}', 400, "INVALID_BODY"),
        (b'{"displayName": "Ana", "maxUsers": 11}', 400, "INVALID_BODY"),
        (b'{"displayName": "Ana", "maxUsers": 2.5}', 400, "INVALID_BODY"),
        (b'{"displayName": "   "}', 400, "INVALID_DISPLAY_NAME"),
        (b'{"displayName": "a\\u0000b"}', 400, "INVALID_DISPLAY_NAME"),
        (json.dumps({"displayName": "x" * 33}).encode(), 400, "INVALID_DISPLAY_NAME"),
        (b"\xff\xfe", 400, "INVALID_BODY"),
    ],
)
async def test_bad_create_bodies_change_nothing(api: Api, redis_client, raw: bytes, status: int, code: str) -> None:
    before = await state_keys(redis_client)
    assert_error(await http(api.base, "POST", "/rooms", raw=raw), status, code)
    assert await state_keys(redis_client) == before


async def test_oversized_body_is_413(api: Api) -> None:
    raw = json.dumps({"displayName": "A" * 20_000}).encode()
    assert_error(await http(api.base, "POST", "/rooms", raw=raw), 413, "PAYLOAD_TOO_LARGE")


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    assert_error(await http(api.base, "GET", "/nope"), 404, "NOT_FOUND")
    assert_error(await http(api.base, "POST", "/rooms/ABCD/leave"), 404, "NOT_FOUND")
    r = await http(api.base, "DELETE", "/rooms")
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in r.headers["Allow"]
    assert_error(await http(api.base, "PUT", "/health"), 405, "METHOD_NOT_ALLOWED")


async def test_rejoin_issues_a_fresh_token(api: Api) -> None:
    host = await api.create("Ana")
    r = await api.rejoin(host["roomCode"].lower(), host["token"])
    assert r.status == 201 and r.body["userId"] == host["userId"] and r.body["roomCode"] == host["roomCode"]
    assert r.body["token"] != host["token"]


async def test_rejoin_unauthorized(api: Api) -> None:
    host = await api.create("Ana")
    code = host["roomCode"]
    forged = jwt.encode({"roomCode": code, "userId": host["userId"], "exp": 9999999999}, "wrong" * 10, "HS256")
    expired = jwt.encode({"roomCode": code, "userId": host["userId"], "exp": 1}, TEST_SECRET, "HS256")
    unsigned = jwt.encode({"roomCode": code, "userId": host["userId"], "exp": 9999999999}, None, "none")
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer x.y.z"},
                    {"Authorization": f"Bearer {forged}"}, {"Authorization": f"Bearer {expired}"},
                    {"Authorization": f"Bearer {unsigned}"}):  # fmt: skip
        assert_error(await http(api.base, "POST", f"/rooms/{code}/rejoin", headers=headers), 401, "UNAUTHORIZED")


async def test_rejoin_not_found_cases(api: Api, store) -> None:
    host = await api.create("Ana")
    other = await api.create("Zed")
    assert_error(await api.rejoin(other["roomCode"], host["token"]), 404, "MEMBER_NOT_FOUND")  # wrong room
    player = await api.join(host["roomCode"], "Bob")
    await store.kick(host["roomCode"], host["userId"], player["userId"])
    assert_error(await api.rejoin(host["roomCode"], player["token"]), 404, "MEMBER_NOT_FOUND")  # kicked
    await store.close_room(host["roomCode"], host["userId"])
    assert_error(await api.rejoin(host["roomCode"], host["token"]), 404, "ROOM_NOT_FOUND")  # closed


async def test_health(api: Api) -> None:
    r = await http(api.base, "GET", "/health")
    assert r.status == 200 and r.body == {"status": "ok", "checks": {"redis": "ok"}}


async def test_health_reports_redis_down(spawn_roomd) -> None:
    from tests.support.processes import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    proc: RoomdProcess = spawn_roomd(dead, wait=False, REDIS_CONNECT_TIMEOUT="200", REDIS_COMMAND_TIMEOUT="300")
    for _ in range(100):
        try:
            r = await http(proc.http, "GET", "/health")
            break
        except OSError:
            await asyncio.sleep(0.1)
    assert r.status == 503 and r.body["status"] == "error" and r.body["checks"]["redis"] != "ok"
    assert_error(await http(proc.http, "POST", "/rooms", {"displayName": "A"}), 503, "REDIS_UNAVAILABLE")


async def test_cors_preflight_and_headers(api: Api) -> None:
    r = await http(api.base, "OPTIONS", "/rooms", headers={"Origin": "https://game.example",
                                                           "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert r.status == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = await http(api.base, "GET", "/health", headers={"Origin": "https://game.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
