"""Rate limiting counted in Redis, so every roomd instance shares one budget per client.

One script serves several budgets: HTTP requests per client address (the
default limit), and WebSocket upgrades per address and per user (the caller
passes another key and limit). Keys are ``throttle:{<key>}:<window>``
(:meth:`roomd.domain.keys.Layout.throttle`): the client is the hash tag, so the two
windows one request reads are in one slot, and the script receives both as KEYS.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from roomd.domain import keys
from roomd.domain.store import guard, now_ms, script_text


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_ms: int


class Throttle:
    """At most ``limit`` requests per client per sliding ``window_ms``."""

    def __init__(
        self,
        client: aioredis.Redis,
        limit: int,
        window_ms: int,
        command_timeout: float | None = None,
        layout: keys.Layout | None = None,
    ) -> None:
        self.limit = limit
        self.command_timeout = command_timeout
        self.window_ms = window_ms
        self.keys = layout or keys.layout()
        self._script = client.register_script(script_text("throttle"))

    async def hit(self, client_id: str, limit: int | None = None) -> Verdict:
        """Count one request of ``client_id`` if it is within ``limit`` (default: the HTTP limit).

        A refused request is not counted, so a client that keeps retrying does
        not push its own ``retry_after`` further away.
        """
        budget = self.limit if limit is None else limit
        now = now_ms()
        window = now // self.window_ms
        names = [self.keys.throttle(client_id, window), self.keys.throttle(client_id, window - 1)]
        allowed, retry = await guard(self._script(keys=names, args=[budget, self.window_ms, now]), self.command_timeout)
        return Verdict(bool(int(allowed)), int(retry))
