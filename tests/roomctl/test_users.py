"""roomctl users show/kick against the private redis-server."""

from __future__ import annotations

from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json


async def test_show(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    await store.connect(host.room_code, player.user_id, "s1")
    shown = as_json(
        await roomctl("--json", "users", "show", host.room_code, "--", player.user_id)
    )  # ids may start with '-'
    joined = shown["user"].pop("joinedAt")
    assert joined.endswith("Z")
    assert shown["user"] == {"id": player.user_id, "displayName": "Bob", "isConnected": True, "isHost": False,
                             "roomCode": host.room_code}  # fmt: skip
    plain = await roomctl("users", "show", host.room_code.lower(), "--", host.user_id)
    lines = plain.stdout.splitlines()
    assert lines[:5] == [f"id\t{host.user_id}", "display name\tAna", f"room\t{host.room_code}", "connected\tno",
                         "host\tyes"]  # fmt: skip
    assert lines[5].startswith("joined\t") and lines[5].endswith("Z")


async def test_show_unknown_user_or_room_is_exit_1(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    result = await roomctl("users", "show", host.room_code, "nobody")
    assert result.exit_code == 1 and result.stderr == f"error: user nobody is not a member of room {host.room_code}\n"
    result = await roomctl("users", "show", "ZZZZ", host.user_id)
    assert result.exit_code == 1 and result.stderr == "error: room ZZZZ not found\n"


async def test_show_needs_the_room_code(roomctl: Roomctl) -> None:
    """Members live in their room: ``users show USER_ID`` alone is a usage error naming both arguments."""
    result = await roomctl("users", "show", "5YgZuOCV-eoaUVvPVpVBIA")
    assert result.exit_code == 2 and "CODE" in result.stderr


async def test_kick_hands_the_room_over(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    kicked = as_json(await roomctl("users", "kick", host.room_code.lower(), "--yes", "--json", "--", host.user_id))
    assert kicked == {"kicked": host.user_id, "roomCode": host.room_code, "role": "member",
                      "newHostId": player.user_id, "roomDeleted": False}  # fmt: skip
    assert (await store.get_room(host.room_code))["hostId"] == player.user_id
    assert await store.get_user(host.room_code, host.user_id) is None
    last = await roomctl("users", "kick", host.room_code, "--yes", "--", player.user_id)
    assert last.exit_code == 0
    assert last.stdout.endswith(f"kicked from room {host.room_code}; nobody was left, the room is gone\n")


async def test_kick_asks_first(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    player = await store.join_room(host.room_code, "Bob")
    refused = await roomctl("users", "kick", host.room_code, "--", player.user_id, input="n\n")
    assert refused.exit_code == 1
    await store.check_member(host.room_code, player.user_id)  # still a member
    done = await roomctl("users", "kick", host.room_code, "--", player.user_id, input="y\n")
    assert done.exit_code == 0 and f"Kick user {player.user_id} from room {host.room_code}?" in done.stderr
    assert await store.get_user(host.room_code, player.user_id) is None


async def test_kick_not_found_is_exit_1(roomctl: Roomctl, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    stranger = await roomctl("users", "kick", host.room_code, "nobody", "--yes")
    assert stranger.exit_code == 1
    assert stranger.stderr == f"error: user nobody is not a member of room {host.room_code}\n"
    no_room = await roomctl("users", "kick", "ZZZZ", "nobody", "--yes")
    assert no_room.exit_code == 1 and no_room.stderr == "error: room ZZZZ not found\n"


async def test_user_ids_are_checked(roomctl: Roomctl) -> None:
    result = await roomctl("users", "show", "KXQD", "a b")
    assert result.exit_code == 2 and "is not a user id" in result.stderr
