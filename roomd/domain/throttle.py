"""Rate limiting counted in Redis, so every roomd instance shares one budget per client.

One script serves several budgets: HTTP requests per client address (the
default limit), and WebSocket upgrades per address and per user (the caller
passes another key and limit). Keys are ``throttle:{<key>}:<window>``
(:meth:`roomd.domain.keys.Layout.throttle`): the client is the hash tag, so the two
windows one request reads are in one slot, and the script receives both as KEYS.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from roomd.domain import keys
from roomd.domain.errors import StoreUnavailable
from roomd.domain.store import LuaScript, guard, now_ms, script_text

log = logging.getLogger(__name__)


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
        fail_open: bool = False,
    ) -> None:
        # On a Cluster a client's counters live on one shard, whatever room it asks for: with
        # fail_open, a shard without a master (failover) lets that client's requests through
        # unthrottled instead of answering 503 for rooms on healthy shards. One Redis: fail closed
        # (the request's room operation could not run anyway).
        self.fail_open = fail_open
        self._warned_at = 0.0
        self.limit = limit
        self.command_timeout = command_timeout
        self.window_ms = window_ms
        self.keys = layout or keys.layout()
        self._script = LuaScript(client, script_text("throttle"))

    async def hit(self, client_id: str, limit: int | None = None) -> Verdict:
        """Count one request of ``client_id`` if it is within ``limit`` (default: the HTTP limit).

        A refused request is not counted, so a client that keeps retrying does
        not push its own ``retry_after`` further away.
        """
        budget = self.limit if limit is None else limit
        now = now_ms()
        window = now // self.window_ms
        names = [self.keys.throttle(client_id, window), self.keys.throttle(client_id, window - 1)]
        try:
            allowed, retry = await guard(
                self._script(keys=names, args=[budget, self.window_ms, now]), self.command_timeout
            )
        except StoreUnavailable as exc:
            if not self.fail_open:
                raise
            if time.monotonic() - self._warned_at > 10:  # one line per 10 s, not one per request
                self._warned_at = time.monotonic()
                log.warning("rate-limit counters unavailable (%s); requests pass unthrottled meanwhile", exc)
            return Verdict(True, 0)
        return Verdict(bool(int(allowed)), int(retry))
