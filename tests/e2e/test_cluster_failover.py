"""Redis Cluster failover: a master with a replica killed under traffic.

Real processes: two roomd instances on a private 3-master, 3-replica cluster
(``make_redis_cluster``). Requests for rooms of the dead master's shard may answer 503
``REDIS_UNAVAILABLE`` while the cluster promotes the replica, then go on without a roomd
restart; rooms on the other shards answer throughout; every live socket ends consistent.
Also: cluster errors reach clients as 503, never 500 (``store.guard``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    MasterDownError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from roomd.domain.errors import StoreUnavailable
from roomd.domain.store import guard
from tests.support.processes import RoomdProcess

Spawn = Callable[..., RoomdProcess]


async def _raise(exc: BaseException) -> Any:
    raise exc


@pytest.mark.parametrize(
    "exc",
    [
        ClusterDownError("The cluster is down"),
        MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ClusterError("TTL exhausted."),
        SlotNotCoveredError('Slot "42" is not covered by the cluster.'),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:7000. Connection refused."),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_guard_maps_cluster_errors_to_store_unavailable(exc: Exception) -> None:
    """A shard without a master (mid-failover), a slot in migration or a dead node: 503, not 500."""
    with pytest.raises(StoreUnavailable):
        await guard(_raise(exc))


async def test_guard_keeps_other_response_errors() -> None:
    """A script bug stays a bug (500), it is not disguised as Redis being away."""
    with pytest.raises(ResponseError):
        await guard(_raise(ResponseError("ERR wrong number of arguments")))
