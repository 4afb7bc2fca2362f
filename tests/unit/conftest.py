"""Unit tests get a redis-server of their own.

The session's shared redis-server (``tests/conftest.py``) has the session's roomd process
attached once any end-to-end test has asked for it, and that process keeps running its sweeps
(expiry, host grace, reaping) every second. Unit tests stage exactly those situations by hand
(an expiry entry due now, a dead instance) and assert what *their* sweep did, so a sweep of the
shared roomd in between made them flaky (seen: a code reused "before the sweep" because the
session's roomd had swept it). Same server class, same per-test FLUSHDB (``redis_client``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from RedisServer.serve()
