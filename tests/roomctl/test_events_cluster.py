"""``roomctl events`` on a Redis Cluster: the scripts SPUBLISH, so a room is followed with SSUBSCRIBE."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from roomd.config import from_env
from roomd.domain.redis_target import target_from_settings
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import invoke
from tests.support.redis_ha import ClusterServers


async def test_events_follows_a_room_on_a_cluster_and_all_is_refused(redis_cluster: ClusterServers) -> None:
    target = target_from_settings(from_env(redis_cluster.env()))
    client: Any = target.command_client(command_timeout=5, connect_timeout=2)
    try:
        store = RoomStore(client, ttl_seconds=600, sharded_pubsub=True)
        host = await store.create_room("Ana")
        env: dict[str, str | None] = {**redis_cluster.env()}
        task = asyncio.create_task(
            asyncio.to_thread(invoke, "events", host.room_code, "--count", "1", "--json", env=env)
        )
        while not task.done():  # until the follower has subscribed and heard one
            await store.set_lock(host.room_code, None, "toggle")
            await asyncio.wait([task], timeout=0.2)
        result = task.result()
        assert result.exit_code == 0, result.output
        [line] = [json.loads(line) for line in result.stdout.splitlines()]
        assert line["event"] == "room:lock_toggled"
        every = await asyncio.to_thread(invoke, "events", "--all", env=env)
        assert every.exit_code == 1 and "--all needs one Redis" in every.stderr
    finally:
        await client.aclose()
