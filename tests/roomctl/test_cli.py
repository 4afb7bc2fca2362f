"""roomctl commands against a real private redis-server (click's CliRunner)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from click.testing import CliRunner, Result

from roomctl.cli import cli
from roomd.domain.store import INDEX_KEY, RoomStore
from tests.support.processes import RedisServer, free_port


@pytest.fixture
def roomctl(redis_server: RedisServer, redis_client):  # redis_client: flushed per test
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--redis-url", redis_server.url, *args], input=input, catch_exceptions=False)

    return run


def as_json(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_rooms_list_pages_newest_first(roomctl, store: RoomStore) -> None:
    codes = []
    for i in range(5):
        codes.append((await store.create_room(f"Host{i}")).room_code)
        await asyncio.sleep(0.003)  # creation times are milliseconds: keep them distinct
    first = as_json(await asyncio.to_thread(roomctl, "--json", "rooms", "list", "--limit", "3"))
    assert [r["code"] for r in first["rooms"]] == codes[::-1][:3]
    assert first["rooms"][0]["hostName"] == "Host4" and first["rooms"][0]["memberCount"] == 1
    second = as_json(await asyncio.to_thread(roomctl, "--json", "rooms", "list", "--limit", "3", "--cursor",
                                             str(first["nextCursor"])))  # fmt: skip
    assert [r["code"] for r in second["rooms"]] == codes[::-1][3:] and second["nextCursor"] is None
    plain = await asyncio.to_thread(roomctl, "rooms", "list")
    assert plain.exit_code == 0 and "\x1b[" not in plain.output  # piped: plain text, no colours
    assert plain.output.splitlines()[0].startswith("CODE\tHOST")


async def test_rooms_list_prunes_expired_entries(roomctl, store: RoomStore, redis_client) -> None:
    alive = await store.create_room("Alive")
    gone = await store.create_room("Gone")
    await redis_client.delete(f"room:{gone.room_code}")  # as if it expired
    listed = as_json(await asyncio.to_thread(roomctl, "--json", "rooms", "list"))
    assert [r["code"] for r in listed["rooms"]] == [alive.room_code]
    assert await redis_client.zscore(INDEX_KEY, gone.room_code) is None


async def test_rooms_show(roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "[red]Bob")
    await store.connect(host.room_code, player.user_id, "s1")
    shown = as_json(await asyncio.to_thread(roomctl, "--json", "rooms", "show", host.room_code.lower()))
    assert shown["room"]["code"] == host.room_code and shown["room"]["connectedCount"] == 1
    assert [(m["displayName"], m["isHost"], m["isConnected"]) for m in shown["members"]] == [
        ("Ana", True, False),
        ("[red]Bob", False, True),
    ]
    plain = await asyncio.to_thread(roomctl, "rooms", "show", host.room_code)
    assert "[red]Bob" in plain.output  # names are printed as text, never as markup
    missing = await asyncio.to_thread(roomctl, "rooms", "show", "ZZZZ")
    assert missing.exit_code == 1 and "not found" in missing.stderr


async def test_rooms_close_needs_confirmation(roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    refused = await asyncio.to_thread(roomctl, "rooms", "close", host.room_code, input="n\n")
    assert refused.exit_code == 1
    await store.check_member(host.room_code, host.user_id)  # still there
    done = await asyncio.to_thread(roomctl, "rooms", "close", host.room_code, input="y\n")
    assert done.exit_code == 0
    assert await store.get_members(host.room_code) == []
    again = await asyncio.to_thread(roomctl, "rooms", "close", host.room_code, "--yes")
    assert again.exit_code == 1 and again.stderr == f"error: room {host.room_code} not found\n"


async def test_rooms_lock_unlock(roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    assert as_json(await asyncio.to_thread(roomctl, "--json", "rooms", "lock", host.room_code)) == {
        "code": host.room_code,
        "isLocked": True,
    }
    assert (await store.get_room(host.room_code))["isLocked"] is True
    assert as_json(await asyncio.to_thread(roomctl, "--json", "rooms", "unlock", host.room_code))["isLocked"] is False
    missing = await asyncio.to_thread(roomctl, "rooms", "lock", "ZZZZ")
    assert missing.exit_code == 1


async def test_users_kick_and_show(roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    shown = as_json(await asyncio.to_thread(roomctl, "--json", "users", "show", player.user_id))
    assert shown["user"] == {
        "id": player.user_id,
        "displayName": "Bob",
        "isConnected": False,
        "isHost": False,
        "joinedAt": shown["user"]["joinedAt"],
        "roomCode": host.room_code,
    }
    kicked = as_json(await asyncio.to_thread(roomctl, "--json", "users", "kick", host.room_code, host.user_id, "--yes"))
    assert kicked["newHostId"] == player.user_id  # the host was kicked: hand-over
    assert (await asyncio.to_thread(roomctl, "users", "show", host.user_id)).exit_code == 1
    assert (await asyncio.to_thread(roomctl, "users", "kick", host.room_code, "nobody", "--yes")).exit_code == 1


async def test_stats(roomctl, store: RoomStore, redis_client) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    await store.create_room("Solo")
    await store.connect(host.room_code, player.user_id, "s")
    await redis_client.zadd("roomd:instances", {"web1:42:3000": int(__import__("time").time() * 1000)})
    result = as_json(await asyncio.to_thread(roomctl, "--json", "stats"))
    assert (result["rooms"], result["members"], result["connectedMembers"]) == (2, 3, 1)
    assert [i["id"] for i in result["instances"]] == ["web1:42:3000"]


async def test_events_follows_a_room(roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    outcome: list[Result] = []
    runner = threading.Thread(
        target=lambda: outcome.append(roomctl("--json", "events", host.room_code, "--count", "2"))
    )
    runner.start()
    for _ in range(50):  # wait until the follower is subscribed
        if (await store.client.pubsub_numsub(f"room:{host.room_code}:events"))[0][1]:
            break
        await asyncio.sleep(0.05)
    await store.set_lock(host.room_code, host.user_id)
    await store.close_room(host.room_code, None)
    await asyncio.to_thread(runner.join, 10)
    lines = [json.loads(line) for line in outcome[0].stdout.splitlines()]
    assert [(e["event"], e["data"]) for e in lines] == [
        ("room:lock_toggled", {"isLocked": True}),
        ("room:closed", {"reason": "ADMIN_CLOSED"}),
    ]
    assert (await asyncio.to_thread(roomctl, "events", "ZZZZ")).exit_code == 1


@pytest.mark.parametrize("args", [["stats"], ["rooms", "list"], ["rooms", "show", "ABCD"], ["users", "show", "x"]])
def test_unreachable_redis_is_exit_3(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--redis-url", f"redis://127.0.0.1:{free_port()}/0", *args])
    assert result.exit_code == 3
    assert "cannot reach Redis" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_are_exit_2() -> None:
    assert CliRunner().invoke(cli, ["rooms", "list", "--limit", "0"]).exit_code == 2
    assert CliRunner().invoke(cli, ["rooms", "show"]).exit_code == 2
    assert CliRunner().invoke(cli, ["nonsense"]).exit_code == 2


def test_help_has_examples() -> None:
    for args in (["--help"], ["rooms", "list", "--help"], ["rooms", "close", "--help"], ["users", "kick", "--help"],
                 ["events", "--help"], ["stats", "--help"]):  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "roomctl" in result.output and "Example" in result.output, args
