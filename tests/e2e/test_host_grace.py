"""hostMigration "disconnect": the host role moves on when the host has been gone HOST_GRACE_SECONDS.

The timer lives in Redis (rooms:hostless), swept by every instance, so it works
when the host's process is another one, and when that process was killed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from roomd.domain.keys import instances_key
from tests.e2e.game_support import Member, mark, reconnect, room
from tests.support.clients import Api
from tests.support.processes import RoomdProcess

FAST = {"HOST_GRACE_SECONDS": "1", "INSTANCE_TIMEOUT_MS": "1000"}


async def handed_over(member: Member, to: Member) -> None:
    """``room:host_updated {HOST_DISCONNECTED}`` to ``to``, then (for the heir) a fresh room:state."""
    frames = await member.until("room:host_updated", timeout=15)
    assert frames[-1]["data"] == {"hostId": to.id, "reason": "HOST_DISCONNECTED"}
    if member is to:  # the heir may now read every entry: it re-reads a snapshot
        state = (await member.until("room:state"))[-1]["data"]
        assert {u["id"]: u["isHost"] for u in state["users"]}[to.id] is True


async def test_the_host_role_passes_after_the_grace_across_processes(
    spawn_roomd: Callable[..., RoomdProcess],
) -> None:
    a, b = spawn_roomd(**FAST), spawn_roomd(**FAST)
    api = Api(a.http)
    # A control room with the default "leave": its host goes first, and must stay host.
    _, (tv, watcher) = await room(api, [a, b], ["TV", "Watcher"], playerMessages="all")
    _, (host, p1, p2) = await room(api, [a, b, b], ["Host", "P1", "P2"], hostMigration="disconnect")
    await host.do("state:set", {"key": "answers", "value": "HOST-ONLY", "visibleTo": "host"})
    tv.sock.close()
    await watcher.until("user:disconnected")
    host.sock.close()
    await handed_over(p1, p1)  # the longest-standing connected member, on the other process
    await handed_over(p2, p1)
    assert p1.state["answers"]["value"] == "HOST-ONLY"
    # The control room's sweep ran past its host's grace too: still no hand-over there.
    await watcher.do("game:send", {"to": "all", "type": "marker", "data": "leave"})
    frames = await watcher.until_marker("leave")
    assert not [f for f in frames if f["event"] == "room:host_updated"]
    # The old host comes back as a player and now answers to the new host.
    host = await reconnect(b.ws, host, since=None)
    users = {u["id"]: u["isHost"] for u in host.frames[0]["data"]["users"]}
    assert users == {host.id: False, p1.id: True, p2.id: False} and "answers" not in host.state
    await host.fails("state:delete", {"key": "answers"}, "NOT_ALLOWED")
    await p1.do("state:delete", {"key": "answers"})


async def test_a_host_back_within_the_grace_keeps_the_role(spawn_roomd: Callable[..., RoomdProcess]) -> None:
    server = spawn_roomd(HOST_GRACE_SECONDS="30")
    _, (host, p1) = await room(Api(server.http), [server], ["Host", "P1"], hostMigration="disconnect")
    host.sock.close()
    await p1.until("user:disconnected")
    host = await reconnect(server.ws, host, since=host.seq)
    await p1.until("user:connected")
    seen = await mark(host, [host, p1], "still")
    assert not [f for f in seen[p1.id] if f["event"] == "room:host_updated"]


async def test_the_host_role_passes_when_the_hosts_process_is_killed(
    spawn_roomd: Callable[..., RoomdProcess], redis_client
) -> None:
    a, b = spawn_roomd(**FAST), spawn_roomd(**FAST)
    _, (host, p1, p2) = await room(Api(b.http), [a, b, b], ["Host", "P1", "P2"], hostMigration="disconnect")
    assert a.process is not None
    pid = a.process.pid
    a.signal(signal.SIGKILL)  # kill -9: nothing written to Redis, no socket closed cleanly
    a.process.wait(10)
    a.process = None
    # The reaper (presence) marks the host disconnected, then the grace runs out: on B alone.
    frames = await p1.until("user:disconnected", timeout=20)
    assert frames[-1]["data"]["user"]["id"] == host.id
    await handed_over(p1, p1)
    await handed_over(p2, p1)
    instances = [i.decode() for i in await redis_client.zrange(instances_key(), 0, -1)]
    assert not [i for i in instances if f":{pid}:" in i]
