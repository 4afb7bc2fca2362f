"""The Redis Cluster broker (roomd/fanout/redis_sharded.py) on a real 3-master cluster.

SSUBSCRIBE lands on the master serving each room's slot (one connection per master in
use); a slot moved to another master (its ``sunsubscribe`` push, or ``-MOVED`` to a
subscription sent on a stale map) and a master killed (its replica takes over) are
followed, and ``on_resubscribed`` names exactly the rooms whose subscription was lost
while the rooms of the other shards keep receiving throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from roomd.config import from_env
from roomd.domain.bus_message import encode
from roomd.domain.keys import channel
from roomd.domain.redis_target import ClusterTarget, target_from_settings
from roomd.fanout import ClusterBroker, make_broker
from tests.support.redis_ha import HOST, ClusterServers

CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"


def _codes() -> Iterator[str]:
    return ("".join(letters) for letters in itertools.product(CODE_LETTERS, repeat=4))


class Fanout:
    """A ClusterBroker on its own cluster client, a separate publisher, and what was received."""

    def __init__(self, servers: ClusterServers) -> None:
        target = target_from_settings(from_env(servers.env()))
        assert isinstance(target, ClusterTarget)
        self.servers = servers
        self.target = target
        self.cluster: Any = target.command_client(command_timeout=2, connect_timeout=1)
        self.publisher: Any = target.command_client(command_timeout=2, connect_timeout=1)
        self.received: dict[str, list[bytes]] = {}
        self.resynced: list[list[str]] = []
        made = make_broker(target, self.cluster, self.deliver, connect_timeout=1, check_interval=0.5, linger=0.1)
        assert isinstance(made, ClusterBroker)
        self.broker = made
        made.on_resubscribed = self.on_resubscribed

    def deliver(self, code: str, raw: bytes) -> None:
        self.received.setdefault(code, []).append(raw)

    async def on_resubscribed(self, codes: list[str]) -> None:
        self.resynced.append(codes)

    async def start(self) -> Fanout:
        await self.broker.start(wait=10)
        assert self.broker.connected
        await self.publisher.initialize()
        return self

    async def close(self) -> None:
        await self.broker.close()
        await self.cluster.aclose()
        await self.publisher.aclose()

    def rooms_by_master(self, per_master: int) -> dict[int, list[str]]:
        """``per_master`` room codes whose channel's slot each master serves, by master port."""
        found: dict[int, list[str]] = {m.port: [] for m in self.servers.masters()}
        slots = self.servers.slot_map()
        for code in _codes():
            slot = self.publisher.keyslot(channel(code))
            port = next(p for lo, hi, p in slots if lo <= slot <= hi)
            if len(found[port]) < per_master:
                found[port].append(code)
            if all(len(codes) == per_master for codes in found.values()):
                return found
        raise AssertionError("not enough codes")

    async def publish(self, code: str, seq: int) -> int:
        return int(await self.publisher.spublish(channel(code), encode("e", {}, seq=seq)))

    async def hears(self, code: str, seq: int, timeout: float = 5) -> None:
        """Publish (retrying while the publisher's map catches up) until the broker delivers it."""
        raw = encode("e", {}, seq=seq)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):  # the publisher's slot map may lag a failover
                await self.publisher.spublish(channel(code), raw)
            for _ in range(20):
                if raw in self.received.get(code, []):
                    return
                await asyncio.sleep(0.01)
            assert time.monotonic() < deadline, f"room {code} never heard seq {seq}"


@pytest.fixture
async def fanout(redis_cluster: ClusterServers) -> AsyncIterator[Fanout]:
    made = await Fanout(redis_cluster).start()
    yield made
    await made.close()


async def test_each_room_is_subscribed_on_its_master_and_hears_spublish(fanout: Fanout) -> None:
    rooms = fanout.rooms_by_master(2)
    for codes in rooms.values():
        for code in codes:
            await fanout.broker.subscribe(code)
    assert fanout.broker.nodes() == {(HOST, port): sorted(codes) for port, codes in rooms.items()}
    health = fanout.broker.health()
    assert (health.kind, health.connected, health.rooms, health.connections) == ("cluster", True, 6, 3)
    for codes in rooms.values():
        for code in codes:
            assert await fanout.publish(code, 1) == 1  # SPUBLISH reaches the shard's one subscriber: us
    for codes in rooms.values():
        for code in codes:
            await fanout.hears(code, 1)
    for code in rooms[next(iter(rooms))]:  # the last room of a master lingers out: so does its connection
        fanout.broker.unsubscribe(code)
    await until(lambda: fanout.broker.health().connections == 2)
    assert fanout.resynced == []


async def until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _node_id(servers: ClusterServers, port: int) -> str:
    with servers.node(port).client() as client:
        return str(client.execute_command("CLUSTER", "MYID").decode())


def move_slot(servers: ClusterServers, slot: int, source: int, target: int) -> None:
    """Move an empty ``slot`` from master ``source`` to master ``target`` as resharding does:
    IMPORTING/MIGRATING, then SETSLOT NODE on the target, the source, and the other masters."""
    source_id, target_id = _node_id(servers, source), _node_id(servers, target)
    with servers.node(target).client() as client:
        client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    with servers.node(source).client() as client:
        client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    for port in [target, source, *(m.port for m in servers.masters() if m.port not in (source, target))]:
        with servers.node(port).client() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    servers.wait_healthy()


async def test_a_moved_slot_is_followed_and_only_its_room_resynced(fanout: Fanout) -> None:
    """Resharding moves a room's slot to another master: Redis pushes ``sunsubscribe`` to its
    subscribers; the broker subscribes where the slot is now and resyncs that room only. A room
    subscribed later on a stale slot map meets ``-MOVED`` and follows it."""
    servers, broker = fanout.servers, fanout.broker
    rooms = fanout.rooms_by_master(3)
    source, target = sorted(rooms)[:2]
    moved, stale, stays = rooms[source]
    elsewhere = rooms[target][0]
    for code in (moved, stays, elsewhere):
        await broker.subscribe(code)
    slot, stale_slot = fanout.publisher.keyslot(channel(moved)), fanout.publisher.keyslot(channel(stale))
    assert slot != stale_slot
    try:
        move_slot(servers, slot, source, target)
        await until(lambda: fanout.resynced)
        assert fanout.resynced == [[moved]]
        assert broker.nodes()[(HOST, target)] == sorted([moved, elsewhere])
        assert broker.nodes()[(HOST, source)] == [stays]
        for n, code in enumerate((moved, stays, elsewhere)):
            await fanout.hears(code, 10 + n)
        move_slot(servers, stale_slot, source, target)  # the broker's map still says: source
        await broker.subscribe(stale)  # SSUBSCRIBE on source -> -MOVED -> target
        assert broker.nodes()[(HOST, target)] == sorted([moved, stale, elsewhere])
        await fanout.hears(stale, 20)
        assert fanout.resynced == [[moved]]  # a room never subscribed is not "resubscribed"
    finally:
        for moved_slot in (slot, stale_slot):
            if servers.master_of_slot(moved_slot).port != source:
                move_slot(servers, moved_slot, target, source)


async def test_a_killed_master_is_followed_to_its_replica_while_other_shards_keep_receiving(
    make_redis_cluster: Any,
) -> None:
    servers: ClusterServers = make_redis_cluster(node_timeout_ms=1000)
    fanout = await Fanout(servers).start()
    try:
        rooms = fanout.rooms_by_master(2)
        for codes in rooms.values():
            for code in codes:
                await fanout.broker.subscribe(code)
        dead = sorted(rooms)[0]
        shard = rooms[dead]
        others = [code for port, codes in rooms.items() if port != dead for code in codes]
        servers.node(dead).kill()
        seq = 0
        deadline = time.monotonic() + 30
        while not fanout.resynced:  # the other shards keep receiving throughout the failover
            seq += 1
            for code in others:
                assert await fanout.publish(code, seq) == 1
            assert time.monotonic() < deadline, "the broker never resubscribed the dead master's rooms"
            await asyncio.sleep(0.05)
        for code in others:
            await until(lambda code=code: len(fanout.received.get(code, [])) == seq, timeout=5)
            assert fanout.received[code] == [encode("e", {}, seq=n) for n in range(1, seq + 1)]
        await asyncio.sleep(0.2)  # (any further resync call would come within this)
        assert sorted(itertools.chain(*fanout.resynced)) == sorted(shard)  # exactly that shard's rooms
        promoted = servers.master_of_slot(fanout.publisher.keyslot(channel(shard[0]))).port
        assert promoted != dead and fanout.broker.nodes()[(HOST, promoted)] == sorted(shard)
        for code in shard:
            await fanout.hears(code, 1000, timeout=20)
        assert fanout.broker.connected and fanout.broker.reconnects == 1
    finally:
        await fanout.close()


async def test_a_silent_shard_connection_is_rebuilt_and_only_its_rooms_resynced(fanout: Fanout) -> None:
    """A master that stops answering (CLIENT PAUSE: alive, connected, silent) fails its link's
    watchdog PINGs: that link is rebuilt and its rooms resynced; the other links never notice."""
    rooms = fanout.rooms_by_master(1)
    for codes in rooms.values():
        await fanout.broker.subscribe(codes[0])
    paused = sorted(rooms)[0]
    with fanout.servers.node(paused).client() as client:
        client.execute_command("CLIENT", "PAUSE", 2500, "ALL")  # > 3 watchdog intervals of 0.5 s
    await until(lambda: fanout.resynced)
    assert fanout.resynced == [rooms[paused]] and fanout.broker.reconnects == 1
    for n, codes in enumerate(rooms.values()):
        await fanout.hears(codes[0], 30 + n)
