"""Where Redis is: one server, a Sentinel-managed master, or a Cluster; the clients to reach it.

Settings say *where* (REDIS_URL, REDIS_SENTINELS + REDIS_SENTINEL_MASTER, or
REDIS_CLUSTER_NODES, see :mod:`roomd.config`); this module is the one place that
turns that into redis-py objects, so roomd, roomctl and the tests reach Redis alike:

* :meth:`RedisTarget.command_client` - the client of every command and script, with
  roomd's timeouts, bounded retries and a pool that *waits* for a free connection
  (a burst of commands queues instead of failing with "Too many connections").
* :meth:`RedisTarget.pubsub_pool` (one server, Sentinel) - the pool the bus takes its
  one subscriber connection from. Each ``make_connection()`` is a fresh, unconnected
  connection without a read timeout; on Sentinel it asks the Sentinels for the
  *current* master every time it connects, so a bus that reconnects after a failover
  lands on the new master.
* :class:`ClusterTarget` (Cluster) - :meth:`ClusterTarget.shard_node` (the master
  serving a channel's slot) and :meth:`ClusterTarget.shard_pubsub_connection` (a
  dedicated connection to it, for SSUBSCRIBE): what a sharded broker needs.

Why Sentinel is handled in the client, not with a fixed address: after a failover
the old master's address answers no more (or, once restarted, answers as a read-only
replica). redis-py's Sentinel connections re-ask the Sentinels on every (re)connect
and turn a READONLY answer into a connection error, so commands fail with
``StoreUnavailable`` (HTTP 503 ``REDIS_UNAVAILABLE``) only while no master is known,
and the next request after the failover reaches the new master.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, Connection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roomd.config import ConfigError, Settings
from roomd.domain.store import POOL_SIZE, make_redis_client, tcp_options

Address = tuple[str, int]

CLUSTER_READY = True
"""Whether roomd itself may run on a Cluster. True since every Lua script receives its keys
as KEYS with the room's ``{CODE}`` hash tag and fan-out uses SPUBLISH/SSUBSCRIBE (issue 12).
Kept as a switch (with :func:`check_supported`) so a build that breaks the per-room key
layout can refuse REDIS_CLUSTER_NODES at start (exit 2) rather than fail on the first room;
tests/e2e/test_cluster*.py run the protocol on a real 3-master cluster."""


def _retry(max_retries: int) -> Retry:
    """roomd's command retry: a few quick attempts (50 ms doubling, at most 0.5 s apart)."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), max_retries)


def _format(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RedisTarget(abc.ABC):
    """Where Redis is; builds the clients. Holds no connection itself."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def describe(self) -> str:
        """For logs and messages: where Redis is, never a password."""

    @abc.abstractmethod
    def command_client(
        self,
        *,
        command_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        decode_responses: bool = False,
        max_connections: int = POOL_SIZE,
    ) -> aioredis.Redis:
        """The client for commands and scripts; the caller closes it with ``aclose()``.

        On a Cluster this is a :class:`redis.asyncio.cluster.RedisCluster`, which has the
        same command methods (scripts must then pass their keys in ``KEYS``).
        """

    def pubsub_pool(self, *, connect_timeout: float = 10.0) -> ConnectionPool:
        """The bus's pool: ``make_connection()`` gives a new connection to the server (or
        current master) with no read timeout; ``aclose()`` releases what the pool holds."""
        raise NotImplementedError(f"{self.kind}: no single pub/sub connection (use sharded pub/sub per node)")


@dataclasses.dataclass(frozen=True)
class SingleTarget(RedisTarget):
    """One Redis at ``url`` (REDIS_URL, REDIS_HOST, or the development Redis)."""

    url: str = dataclasses.field(repr=False)  # may carry a password
    kind: ClassVar[str] = "single"

    def describe(self) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        if parts.password:
            netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return self.url

    def command_client(
        self,
        *,
        command_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        decode_responses: bool = False,
        max_connections: int = POOL_SIZE,
    ) -> aioredis.Redis:
        return make_redis_client(
            self.url,
            command_timeout=command_timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            decode_responses=decode_responses,
            max_connections=max_connections,
        )

    def pubsub_pool(self, *, connect_timeout: float = 10.0) -> ConnectionPool:
        return ConnectionPool.from_url(
            self.url, socket_timeout=None, socket_connect_timeout=connect_timeout, **tcp_options(self.url)
        )


class _SentinelPool(SentinelConnectionPool):
    """A Sentinel-managed pool that owns its :class:`Sentinel`: closing the pool closes the
    connections to the Sentinels too (redis-py leaves them open: ``master_for`` clients
    are "owned by the caller", the Sentinel's own clients by nobody)."""

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self.sentinel_manager.aclose()


class _BlockingSentinelPool(_SentinelPool, BlockingConnectionPool):
    """Sentinel's master resolution with the blocking pool of :func:`make_redis_client`.

    The method order puts SentinelConnectionPool's address handling first and
    BlockingConnectionPool's waiting ``get_connection``/``release`` next; both are
    public classes of redis-py and tests/unit/test_redis_target.py checks the mix
    (a full pool waits; a failover is followed).
    """


@dataclasses.dataclass(frozen=True)
class SentinelTarget(RedisTarget):
    """The master Sentinels know as ``master`` (REDIS_SENTINELS, REDIS_SENTINEL_MASTER)."""

    sentinels: tuple[Address, ...]
    master: str
    username: str | None = None  # data nodes
    password: str | None = dataclasses.field(default=None, repr=False)
    sentinel_username: str | None = None  # the Sentinels
    sentinel_password: str | None = dataclasses.field(default=None, repr=False)
    kind: ClassVar[str] = "sentinel"

    def describe(self) -> str:
        return f"Sentinel master {self.master!r} via {','.join(map(_format, self.sentinels))}"

    def sentinel(self, *, command_timeout: float = 5.0, connect_timeout: float = 10.0) -> Sentinel:
        """A client of the Sentinels themselves (each asked once per lookup: no retry, so a
        dead Sentinel costs one refused connection, not redis-py's default back-off)."""
        return Sentinel(
            list(self.sentinels),
            sentinel_kwargs={
                "socket_timeout": command_timeout,
                "socket_connect_timeout": connect_timeout,
                "socket_keepalive": True,
                "retry": Retry(NoBackoff(), 0),
                "username": self.sentinel_username,
                "password": self.sentinel_password,
            },
        )

    def _data_kwargs(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password, "socket_keepalive": True}

    def command_client(
        self,
        *,
        command_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        decode_responses: bool = False,
        max_connections: int = POOL_SIZE,
    ) -> aioredis.Redis:
        pool = _BlockingSentinelPool(
            self.master,
            self.sentinel(command_timeout=command_timeout, connect_timeout=connect_timeout),
            max_connections=max_connections,
            timeout=command_timeout,
            socket_timeout=command_timeout,
            socket_connect_timeout=connect_timeout,
            retry=_retry(max_retries),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
            decode_responses=decode_responses,
            **self._data_kwargs(),
        )
        return aioredis.Redis.from_pool(pool)  # the client owns the pool (and its Sentinel): aclose() closes both

    def pubsub_pool(self, *, connect_timeout: float = 10.0) -> ConnectionPool:
        return _SentinelPool(
            self.master,
            self.sentinel(command_timeout=connect_timeout, connect_timeout=connect_timeout),
            socket_timeout=None,
            socket_connect_timeout=connect_timeout,
            **self._data_kwargs(),
        )


class _QueueingCluster(RedisCluster):
    """A ``RedisCluster`` whose commands wait for a free connection instead of failing.

    redis-py's cluster client has no blocking pool: past ``max_connections`` to one node,
    a command fails at once with MaxConnectionsError (a burst of 100 creates, or a mass
    disconnect, answered 503 while Redis idled). At most ``max_connections`` commands are
    in flight per process, so no node's pool can be exhausted, and the rest queue, as
    they do on one Redis with the blocking pool (``store.make_redis_client``).
    """

    def __init__(self, max_in_flight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            return await super().execute_command(*args, **kwargs)


@dataclasses.dataclass(frozen=True)
class ClusterTarget(RedisTarget):
    """A Redis Cluster reached through any of ``nodes`` (REDIS_CLUSTER_NODES).

    For a sharded broker (SPUBLISH in the scripts, SSUBSCRIBE per node)::

        cluster = target.command_client(...)            # also the topology cache
        node = await target.shard_node(cluster, name)   # the master serving name's slot
        conn = target.shard_pubsub_connection(node)     # dedicated, no read timeout
        await conn.connect()
        await conn.send_command("SSUBSCRIBE", name, ...)  # same-slot channels only
        ... await conn.read_response(timeout=math.inf, push_request=True)

    When that connection breaks, or Redis answers ``-MOVED`` or sends ``sunsubscribe``
    (its slot moved away), call ``shard_node(cluster, name, refresh=True)`` and
    subscribe again where it says: after a failover the slot's new master is a former
    replica at another address.
    """

    nodes: tuple[Address, ...]
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    kind: ClassVar[str] = "cluster"

    def describe(self) -> str:
        return f"Redis Cluster via {','.join(map(_format, self.nodes))}"

    def command_client(
        self,
        *,
        command_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        decode_responses: bool = False,
        max_connections: int = POOL_SIZE,
    ) -> aioredis.Redis:
        # redis-py's cluster client has no waiting pool: beyond max_connections per node a
        # command fails at once (MaxConnectionsError). _QueueingCluster makes a burst wait instead.
        cluster = _QueueingCluster(
            max_connections,
            startup_nodes=[ClusterNode(host, port) for host, port in self.nodes],
            username=self.username,
            password=self.password,
            socket_timeout=command_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            max_connections=max_connections,
            retry=_retry(max_retries),
            health_check_interval=30,
            decode_responses=decode_responses,
        )
        return cluster  # type: ignore[return-value]  # same command API, not a subclass of Redis

    async def shard_node(self, cluster: RedisCluster, channel: str, *, refresh: bool = False) -> Address:
        """``(host, port)`` of the master serving ``channel``'s hash slot (SPUBLISH routes there).

        ``refresh`` re-reads the topology from the cluster first (after a broken
        connection, a ``-MOVED`` reply or a ``sunsubscribe`` push); otherwise the
        client's cached slot map is used (read once, on first use).
        """
        if refresh:
            await cluster.nodes_manager.initialize()
        else:
            await cluster.initialize()  # no-op once initialised
        node = cluster.get_node_from_key(channel, replica=False)
        if node is None:  # pragma: no cover - redis-py raises SlotNotCoveredError itself
            raise RedisConnectionError(f"no master serves the slot of {channel!r}")
        return (node.host, int(node.port))

    def shard_pubsub_connection(self, node: Address, *, connect_timeout: float = 10.0) -> Connection:
        """A new, unconnected connection to ``node`` for SSUBSCRIBE: no read timeout (it is idle
        by design), TCP keepalive, the data nodes' credentials. The caller connects and closes it."""
        host, port = node
        return Connection(
            host=host,
            port=port,
            username=self.username,
            password=self.password,
            socket_timeout=None,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
        )


def target_from_settings(settings: Settings, url: str | None = None) -> RedisTarget:
    """The target the settings name; ``url`` (the development Redis) when they name none."""
    if settings.redis_cluster_nodes:
        return ClusterTarget(settings.redis_cluster_nodes, settings.redis_username, settings.redis_password)
    if settings.redis_sentinels:
        assert settings.redis_sentinel_master  # config guarantees it
        return SentinelTarget(
            settings.redis_sentinels,
            settings.redis_sentinel_master,
            settings.redis_username,
            settings.redis_password,
            settings.redis_sentinel_username,
            settings.redis_sentinel_password,
        )
    chosen = url or settings.redis_url
    if chosen is None:
        raise ConfigError("no Redis configured: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES")
    return SingleTarget(chosen)


def check_supported(target: RedisTarget) -> None:
    """Refuse (ConfigError, exit 2) what this build cannot serve rooms on; see :data:`CLUSTER_READY`."""
    if target.kind == "cluster" and not CLUSTER_READY:
        raise ConfigError(
            "REDIS_CLUSTER_NODES: this roomd build cannot run rooms on Redis Cluster yet "
            "(its scripts need the per-room key layout); use REDIS_URL or REDIS_SENTINELS"
        )
