"""Audience polls end to end: real roomd processes, viewers on two of them voting.

A frame that must not arrive is shown absent by order: events of a room reach every socket in
the order of their seq, so a tally published before ``poll:closed`` would come before it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.game_support import Member, connect
from tests.support.clients import Api, http
from tests.support.processes import RoomdProcess

FAST = {"WS_RATE_LIMIT": "1000", "WS_RATE_BURST": "1000"}
CHOICES = ["A", "B", "C"]


@pytest.fixture
def two(spawn_roomd: Callable[..., RoomdProcess]) -> list[RoomdProcess]:
    return [spawn_roomd(**FAST), spawn_roomd(**FAST)]


async def audience_room(
    where: list[RoomdProcess], viewers: int, players: int = 1
) -> tuple[str, Member, list[Member], list[Member]]:
    """(code, host, players, viewers): an audience room, players and viewers spread over ``where``."""
    api = Api(where[0].http)
    created = await api.create("Host", audience=True)
    code = created["roomCode"]
    host = await connect(where[0].ws, created)
    members = [await connect(where[(i + 1) % len(where)].ws, await api.join(code, f"P{i}")) for i in range(players)]
    watchers = []
    for i in range(viewers):
        r = await http(where[i % len(where)].http, "POST", f"/rooms/{code}/audience", {"displayName": f"V{i}"})
        assert r.status == 201, r.body
        admission = {"token": r.body["token"], "userId": r.body["audienceId"]}
        watchers.append(await connect(where[i % len(where)].ws, admission))
    return code, host, members, watchers


def events(frames: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if f["event"] == name]


async def test_viewers_on_two_processes_vote_and_the_host_gets_few_tallies_then_the_exact_count(
    two: list[RoomdProcess],
) -> None:
    _, host, (player,), viewers = await audience_room(two, viewers=20)
    await host.do("poll:open", {"pollId": "p1", "choices": CHOICES, "prompt": "Best?"})
    opened = {"pollId": "p1", "choices": CHOICES, "prompt": "Best?", "publicTallies": False}
    for someone in [host, player, *viewers]:
        assert (await someone.until("poll:opened"))[-1]["data"] == opened
    # Every viewer votes three times (changing its mind), all viewers at once, on both processes.
    rng = random.Random(13)
    plans = {v.id: [rng.choice(CHOICES) for _ in range(3)] for v in viewers}

    async def vote(viewer: Member) -> None:
        for choice in plans[viewer.id]:
            await viewer.do("poll:vote", {"pollId": "p1", "choice": choice})

    await asyncio.gather(*(vote(v) for v in viewers))
    expected = {choice: sum(1 for p in plans.values() if p[-1] == choice) for choice in CHOICES}
    # Without any further vote, the tally catches up with the last votes (the instances' nudges).
    frames = await host.until("poll:tally", lambda d: d["counts"] == expected and d["votes"] == len(viewers))
    await host.do("poll:close", {"pollId": "p1"})
    frames += await host.until("poll:closed")
    assert frames[-1]["data"] == {"pollId": "p1", "counts": expected, "votes": len(viewers)}
    tallies = events(frames, "poll:tally")
    assert 1 <= len(tallies) < 3 * len(viewers)  # coalesced: never one per vote
    for tally in tallies:
        assert tally["pollId"] == "p1" and sum(tally["counts"].values()) == tally["votes"] <= len(viewers)
    # Private tallies: nobody else saw a count.
    for someone in [player, *viewers]:
        seen = await someone.until("poll:closed")
        assert events(seen, "poll:tally") == [] and seen[-1]["data"] == {"pollId": "p1"}


async def test_public_tallies_reach_members_and_viewers_on_both_processes(two: list[RoomdProcess]) -> None:
    _, host, (player,), viewers = await audience_room(two, viewers=2)
    await host.do("poll:open", {"pollId": "p2", "choices": ["yes", "no"], "publicTallies": True})
    await viewers[0].do("poll:vote", {"pollId": "p2", "choice": "no"})  # the poll's first vote: tallied at once
    first = {"pollId": "p2", "counts": {"yes": 0, "no": 1}, "votes": 1}
    for someone in [host, player, *viewers]:
        assert (await someone.until("poll:tally"))[-1]["data"] == first
    await viewers[1].do("poll:vote", {"pollId": "p2", "choice": "yes"})
    await host.do("poll:close", {"pollId": "p2"})
    final = {"pollId": "p2", "counts": {"yes": 1, "no": 1}, "votes": 2}
    for someone in [host, player, *viewers]:
        assert (await someone.until("poll:closed"))[-1]["data"] == final


async def test_who_may_do_what(two: list[RoomdProcess]) -> None:
    _, host, (player,), (viewer,) = await audience_room(two, viewers=1)
    await player.fails("poll:open", {"pollId": "p", "choices": CHOICES}, "NOT_HOST")
    await viewer.fails("poll:open", {"pollId": "p", "choices": CHOICES}, "NOT_ALLOWED")
    await viewer.fails("poll:vote", {"pollId": "p", "choice": "A"}, "POLL_NOT_OPEN")
    await host.do("poll:open", {"pollId": "p", "choices": CHOICES})
    await host.fails("poll:open", {"pollId": "q", "choices": CHOICES}, "POLL_ALREADY_OPEN")
    await player.fails("poll:vote", {"pollId": "p", "choice": "A"}, "NOT_ALLOWED")
    await host.fails("poll:vote", {"pollId": "p", "choice": "A"}, "NOT_ALLOWED")
    await viewer.fails("poll:vote", {"pollId": "q", "choice": "A"}, "POLL_NOT_OPEN")
    await viewer.fails("poll:vote", {"pollId": "p", "choice": "Z"}, "INVALID_MESSAGE")
    await viewer.fails("poll:vote", {"pollId": "p"}, "INVALID_MESSAGE")
    await host.fails("poll:open", {"pollId": "r", "choices": ["A", "A"]}, "INVALID_MESSAGE")  # not unique
    await player.fails("poll:close", {"pollId": "p"}, "NOT_HOST")
    await viewer.fails("poll:close", {"pollId": "p"}, "NOT_ALLOWED")
    await viewer.do("poll:vote", {"pollId": "p", "choice": "C"})
    await host.do("poll:close", {"pollId": "p"})
    assert (await host.until("poll:closed"))[-1]["data"]["counts"] == {"A": 0, "B": 0, "C": 1}


async def test_room_state_carries_the_open_poll(two: list[RoomdProcess]) -> None:
    """A viewer's with its own vote; the host's with the counts; a player's without either."""
    _, host, (player,), (viewer,) = await audience_room(two, viewers=1)
    await host.do("poll:open", {"pollId": "p", "choices": ["x", "y"]})
    await viewer.do("poll:vote", {"pollId": "p", "choice": "y"})
    poll = {"pollId": "p", "choices": ["x", "y"], "prompt": "", "publicTallies": False}
    viewer = await connect(two[1].ws, viewer.membership)
    assert viewer.frames[0]["data"]["poll"] == {**poll, "vote": "y"}
    player = await connect(two[1].ws, player.membership)  # replaces its older socket
    assert player.frames[0]["data"]["poll"] == {**poll, "vote": None}
    host = await connect(two[1].ws, host.membership)
    assert host.frames[0]["data"]["poll"] == {**poll, "vote": None, "counts": {"x": 0, "y": 1}, "votes": 1}
    await host.do("poll:close", {"pollId": "p"})
    host = await connect(two[0].ws, host.membership)
    assert host.frames[0]["data"]["poll"] is None
