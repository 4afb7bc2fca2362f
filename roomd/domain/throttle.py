"""Rate limiting counted in Redis, so every roomd instance shares one budget per client.

One script serves several budgets: HTTP requests per client address (the
default limit), and WebSocket upgrades per address and per user (the caller
passes another key and limit). Keys are ``throttle:<key>:<window>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from roomd.domain.store import guard, now_ms

_SCRIPT = (Path(__file__).with_name("lua") / "throttle.lua").read_text()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_ms: int


class Throttle:
    """At most ``limit`` requests per client per sliding ``window_ms``."""

    def __init__(
        self, client: aioredis.Redis, limit: int, window_ms: int, command_timeout: float | None = None
    ) -> None:
        self.limit = limit
        self.command_timeout = command_timeout
        self.window_ms = window_ms
        self._script = client.register_script(_SCRIPT)

    async def hit(self, client_id: str, limit: int | None = None) -> Verdict:
        """Count one request of ``client_id`` if it is within ``limit`` (default: the HTTP limit).

        A refused request is not counted, so a client that keeps retrying does
        not push its own ``retry_after`` further away.
        """
        budget = self.limit if limit is None else limit
        allowed, retry = await guard(
            self._script(keys=[], args=[client_id, budget, self.window_ms, now_ms()]), self.command_timeout
        )
        return Verdict(bool(int(allowed)), int(retry))
