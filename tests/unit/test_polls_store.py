"""Audience polls' atomic scripts (poll_open, poll_vote, poll_tally, poll_close) against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import redis.asyncio as aioredis

from roomd.domain import keys
from roomd.domain.bus_message import BusMessage
from roomd.domain.errors import DomainError
from roomd.domain.store import POLL_TALLY_MS, RoomStore, now_ms
from roomd.protocol import ErrorCode

CHOICES = ["red", "green", "blue"]


async def audience_room(store: RoomStore, redis_client: aioredis.Redis, viewers: int) -> tuple[str, str, list[str]]:
    """A room with an audience: (code, host id, admitted viewer ids)."""
    host = await store.create_room("Host")
    code = host.room_code
    await rule_change(store, code, audience=True)
    ids = [f"viewer-{i}" for i in range(viewers)]
    for viewer in ids:
        entry = {"id": viewer, "displayName": "V", "joinedAt": 0}
        await redis_client.hset(store.keys.audience(code), viewer, json.dumps(entry))
    return code, host.user_id, ids


async def published(client: aioredis.Redis, code: str, action: Any) -> tuple[Any, list[BusMessage]]:
    """(what ``action`` returned, the bus messages it published on the room's channel)."""
    pubsub = client.pubsub()
    await pubsub.subscribe(keys.layout().channel(code))
    await pubsub.get_message(timeout=1)
    result = await action
    found = []
    while (message := await pubsub.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            found.append(BusMessage.decode(message["data"]))
    await pubsub.aclose()
    return result, found


async def rule_change(store: RoomStore, code: str, **fields: Any) -> None:
    """Rewrite fields of the room's record."""
    raw = await store.client.get(store.keys.room(code))
    room = json.loads(raw)
    room.update(fields)
    await store.client.set(store.keys.room(code), json.dumps(room), keepttl=True)


async def age_tally(store: RoomStore, code: str) -> None:
    """Pretend the last tally is older than POLL_TALLY_MS (no sleeping in tests)."""
    await store.client.hset(store.keys.poll(code), "tallyAt", 1)


async def test_open_vote_change_close_counts_exactly(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, (v1, v2, v3) = await audience_room(store, redis_client, 3)
    seq, [opened] = await published(redis_client, code, store.open_poll(code, host, "p1", CHOICES, prompt="Colour?"))
    assert opened.aud == 1 and opened.seq == seq and opened.frame() == {
        "event": "poll:opened", "seq": seq,
        "data": {"pollId": "p1", "choices": CHOICES, "prompt": "Colour?", "publicTallies": False},
    }  # fmt: skip
    await store.vote(code, v1, "p1", "red")
    await store.vote(code, v2, "p1", "red")
    await store.vote(code, v3, "p1", "blue")
    await store.vote(code, v2, "p1", "green")  # changed
    await store.vote(code, v2, "p1", "green")  # the same again: nothing changes
    poll = await store.get_poll(code)
    assert poll is not None and poll["open"] and poll["votes"] == 3
    assert poll["counts"] == {"red": 1, "green": 1, "blue": 1}
    seq, [closed] = await published(redis_client, code, store.close_poll(code, host, "p1"))
    # Private tallies: members and viewers learn it closed; the host gets the counts (direct).
    assert closed.aud == 1 and closed.frame()["data"] == {"pollId": "p1"}
    assert closed.direct == {
        "userId": host, "event": "poll:closed", "data": {"pollId": "p1", "counts": {"red": 1, "green": 1, "blue": 1},
                                                         "votes": 3},
    }  # fmt: skip
    poll = await store.get_poll(code)
    assert poll is not None and not poll["open"] and poll["counts"] == {"red": 1, "green": 1, "blue": 1}
    # The next poll starts from nothing.
    await store.open_poll(code, host, "p2", ["yes", "no"], public=True)
    assert (await store.get_poll(code)) == {
        "pollId": "p2", "choices": ["yes", "no"], "prompt": "", "publicTallies": True, "open": True,
        "counts": {"yes": 0, "no": 0}, "votes": 0,
    }  # fmt: skip
    await store.vote(code, v1, "p2", "no")
    _, [closed] = await published(redis_client, code, store.close_poll(code, host, "p2"))
    assert closed.aud == 1 and closed.direct is None
    assert closed.frame()["data"] == {"pollId": "p2", "counts": {"yes": 0, "no": 1}, "votes": 1}


async def test_rules_and_errors_change_nothing(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, (v1,) = await audience_room(store, redis_client, 1)
    player = (await store.join_room(code, "Player")).user_id

    async def poll_keys() -> list[Any]:
        k = store.keys
        return [await redis_client.hgetall(key) for key in (k.poll(code), k.poll_votes(code), k.poll_counts(code))]

    async def fails(action: Any, code_: ErrorCode) -> None:
        before = await poll_keys()
        with pytest.raises(DomainError) as caught:
            await action
        assert caught.value.code is code_
        assert await poll_keys() == before

    await fails(store.vote(code, v1, "p1", "red"), ErrorCode.POLL_NOT_OPEN)  # no poll yet
    await fails(store.open_poll(code, player, "p1", CHOICES), ErrorCode.NOT_HOST)
    await fails(store.close_poll(code, host, "p1"), ErrorCode.POLL_NOT_OPEN)
    await store.open_poll(code, host, "p1", CHOICES)
    await store.vote(code, v1, "p1", "red")
    await fails(store.open_poll(code, host, "p2", CHOICES), ErrorCode.POLL_ALREADY_OPEN)
    await fails(store.vote(code, v1, "p0", "red"), ErrorCode.POLL_NOT_OPEN)
    await fails(store.vote(code, v1, "p1", "purple"), ErrorCode.INVALID_MESSAGE)
    await fails(store.vote(code, player, "p1", "blue"), ErrorCode.NOT_ALLOWED)  # members do not vote
    await fails(store.vote(code, "nobody", "p1", "blue"), ErrorCode.MEMBER_NOT_FOUND)
    await fails(store.close_poll(code, player, "p1"), ErrorCode.NOT_HOST)
    await fails(store.close_poll(code, host, "p0"), ErrorCode.POLL_NOT_OPEN)
    assert await redis_client.hgetall(store.keys.poll_votes(code)) == {v1.encode(): b"red"}
    # A room without an audience has no polls.
    plain = await store.create_room("Host")
    with pytest.raises(DomainError) as caught:
        await store.open_poll(plain.room_code, plain.user_id, "p1", CHOICES)
    assert caught.value.code is ErrorCode.AUDIENCE_DISABLED
    assert await redis_client.exists(store.keys.poll(plain.room_code)) == 0


async def test_tallies_are_coalesced_and_go_to_the_host(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, viewers = await audience_room(store, redis_client, 4)
    await store.open_poll(code, host, "p1", CHOICES)
    # The poll's first vote is tallied at once, to the host only.
    vote, [tally] = await published(redis_client, code, store.vote(code, viewers[0], "p1", "red"))
    assert vote.tally_due is None and vote.seq == tally.seq
    assert tally.to == {host} and tally.aud == 0
    assert tally.frame()["data"] == {"pollId": "p1", "counts": {"red": 1, "green": 0, "blue": 0}, "votes": 1}
    # Votes within POLL_TALLY_MS publish nothing: they say when the tally is due. (The last tally
    # is moved a minute ahead: the test's own pauses must not make it old.)
    tally_at = now_ms() + 60_000
    await redis_client.hset(store.keys.poll(code), "tallyAt", tally_at)
    for viewer in viewers[1:]:
        vote, messages = await published(redis_client, code, store.vote(code, viewer, "p1", "blue"))
        assert messages == [] and vote.tally_due == tally_at + POLL_TALLY_MS and vote.seq == tally.seq
    # The nudge too early: still due then; once due: one tally with all three votes.
    due, messages = await published(redis_client, code, store.tally_poll(code))
    assert messages == [] and due == tally_at + POLL_TALLY_MS
    await age_tally(store, code)
    due, [tally] = await published(redis_client, code, store.tally_poll(code))
    assert due is None and tally.frame()["data"]["counts"] == {"red": 1, "green": 0, "blue": 3}
    # Nothing new since: a second nudge (another instance's) publishes nothing.
    await age_tally(store, code)
    due, messages = await published(redis_client, code, store.tally_poll(code))
    assert due is None and messages == []


async def test_public_tallies_reach_everyone(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, (v1,) = await audience_room(store, redis_client, 1)
    await store.open_poll(code, host, "p1", ["a", "b"], public=True)
    _, [tally] = await published(redis_client, code, store.vote(code, v1, "p1", "b"))
    assert tally.aud == 1 and tally.to is None
    assert tally.frame()["data"] == {"pollId": "p1", "counts": {"a": 0, "b": 1}, "votes": 1}


async def test_poll_keys_share_the_rooms_ttl(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, (v1,) = await audience_room(store, redis_client, 1)
    await store.open_poll(code, host, "p1", CHOICES)
    await store.vote(code, v1, "p1", "red")
    for key in (store.keys.poll(code), store.keys.poll_votes(code), store.keys.poll_counts(code)):
        assert 0 < await redis_client.pttl(key) <= 600_000, key


async def test_concurrent_vote_changes_count_each_viewers_last_vote(
    store: RoomStore, redis_client: aioredis.Redis
) -> None:
    code, host, viewers = await audience_room(store, redis_client, 200)
    await store.open_poll(code, host, "p1", CHOICES)
    rng = random.Random(13)
    plan = [(rng.choice(viewers), rng.choice(CHOICES)) for _ in range(1000)]
    # Each viewer's votes run in order (a socket runs its frames one at a time); viewers concurrently.
    by_viewer: dict[str, list[str]] = {}
    for viewer, choice in plan:
        by_viewer.setdefault(viewer, []).append(choice)

    async def votes_of(viewer: str, choices: list[str]) -> None:
        for choice in choices:
            await store.vote(code, viewer, "p1", choice)

    await asyncio.gather(*(votes_of(v, c) for v, c in by_viewer.items()))
    expected = {choice: 0 for choice in CHOICES}
    for choices in by_viewer.values():
        expected[choices[-1]] += 1
    poll = await store.get_poll(code)
    assert poll is not None and poll["counts"] == expected and poll["votes"] == len(by_viewer)
    _, [closed] = await published(redis_client, code, store.close_poll(code, host, "p1"))
    assert closed.direct is not None and closed.direct["data"]["counts"] == expected


async def test_a_thousand_concurrent_votes_from_200_viewers(store: RoomStore, redis_client: aioredis.Redis) -> None:
    """All 1,000 at once (a viewer's own votes may race each other): the counts always equal the
    stored votes, whichever of a viewer's votes landed last."""
    code, host, viewers = await audience_room(store, redis_client, 200)
    await store.open_poll(code, host, "p1", CHOICES)
    rng = random.Random(7)
    await asyncio.gather(*(store.vote(code, rng.choice(viewers), "p1", rng.choice(CHOICES)) for _ in range(1000)))
    stored = await redis_client.hgetall(store.keys.poll_votes(code))
    expected = {choice: 0 for choice in CHOICES}
    for choice in stored.values():
        expected[choice.decode()] += 1
    poll = await store.get_poll(code)
    assert poll is not None and poll["counts"] == expected and poll["votes"] == len(stored)


async def test_choices_and_prompt_are_any_text(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, (v1,) = await audience_room(store, redis_client, 1)
    choices = ['Zoë "quoted"', "🎲/dice", "1", "a\\nb"]
    _, [opened] = await published(redis_client, code, store.open_poll(code, host, "p/1", choices, prompt="¿Qué?"))
    assert opened.frame()["data"] == {"pollId": "p/1", "choices": choices, "prompt": "¿Qué?", "publicTallies": False}
    await store.vote(code, v1, "p/1", "🎲/dice")
    _, [closed] = await published(redis_client, code, store.close_poll(code, host, "p/1"))
    assert closed.direct is not None
    assert closed.direct["data"]["counts"] == {'Zoë "quoted"': 0, "🎲/dice": 1, "1": 0, "a\\nb": 0}


async def test_a_kicked_viewers_vote_leaves_the_open_poll(store: RoomStore, redis_client: aioredis.Redis) -> None:
    code, host, (v1, v2) = await audience_room(store, redis_client, 2)
    await store.open_poll(code, host, "p1", CHOICES)
    await store.vote(code, v1, "p1", "red")
    await store.vote(code, v2, "p1", "red")
    await store.kick(code, host, v1)
    poll = await store.get_poll(code)
    assert poll is not None and poll["votes"] == 1 and poll["counts"] == {"red": 1, "green": 0, "blue": 0}
    _, [closed] = await published(redis_client, code, store.close_poll(code, host, "p1"))
    assert closed.direct is not None and closed.direct["data"]["counts"]["red"] == 1
    # Once the poll is closed, its final tally stands: a later kick changes nothing.
    await store.kick(code, host, v2)
    poll = await store.get_poll(code)
    assert poll is not None and poll["counts"]["red"] == 1
