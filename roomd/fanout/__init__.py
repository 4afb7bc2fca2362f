"""Fan-out: how a room's events reach this process's sockets of it.

Layer: below the transports, above the domain. Redis (the domain's scripts) publishes
each event once; a :class:`~roomd.fanout.broker.Broker` subscribes this process to
the rooms it holds sockets of and hands their messages to the
:class:`~roomd.fanout.hub.Hub`, which writes each to the room's local sockets
(anything implementing :class:`~roomd.fanout.hub.LocalSocket`). The message format
is :mod:`roomd.domain.bus_message`.

Brokers (:func:`make_broker` picks one from the Redis target):

* :class:`~roomd.fanout.redis_pubsub.RedisBroker` - one Redis or a Sentinel-managed
  master: PUBLISH/SUBSCRIBE, one connection, a self-check;
* :class:`~roomd.fanout.redis_sharded.ClusterBroker` - Redis Cluster: SPUBLISH/SSUBSCRIBE
  on the master serving each room's slot, one connection per master in use, following
  slot moves and failovers;
* :class:`~roomd.fanout.memory.InProcessBroker` - no Redis: tests of socket logic.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from roomd.domain.redis_target import ClusterTarget, RedisTarget
from roomd.fanout.broker import Broker, BrokerHealth, Deliver, Resubscribed
from roomd.fanout.hub import Hub, LocalSocket
from roomd.fanout.memory import InProcessBroker
from roomd.fanout.redis_pubsub import RedisBroker
from roomd.fanout.redis_sharded import ClusterBroker

__all__ = [
    "Broker",
    "BrokerHealth",
    "ClusterBroker",
    "Deliver",
    "Hub",
    "InProcessBroker",
    "LocalSocket",
    "RedisBroker",
    "Resubscribed",
    "make_broker",
]


def make_broker(
    target: RedisTarget,
    client: aioredis.Redis | RedisCluster,
    deliver: Deliver,
    *,
    connect_timeout: float = 10.0,
    check_interval: float = 5.0,
    subscribe_timeout: float = 5.0,
    linger: float = 10.0,
) -> Broker:
    """The broker for ``target``; ``client`` is its command client (from ``target.command_client``).

    A Cluster gets the sharded broker (the scripts SPUBLISH there); one Redis and
    Sentinel get PUBLISH/SUBSCRIBE over the target's pub/sub pool.
    """
    if isinstance(target, ClusterTarget):
        assert isinstance(client, RedisCluster), "a Cluster target's command client is a RedisCluster"
        return ClusterBroker(
            target,
            client,
            deliver,
            connect_timeout=connect_timeout,
            check_interval=check_interval,
            subscribe_timeout=subscribe_timeout,
            linger=linger,
        )
    assert isinstance(client, aioredis.Redis)
    return RedisBroker(
        target.pubsub_pool(connect_timeout=connect_timeout),
        client,
        deliver,
        check_interval=check_interval,
        subscribe_timeout=subscribe_timeout,
        linger=linger,
    )
