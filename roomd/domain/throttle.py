"""HTTP rate limiting counted in Redis, so every roomd instance shares one budget per client."""

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

    async def hit(self, client_id: str) -> Verdict:
        allowed, retry = await guard(
            self._script(keys=[], args=[client_id, self.limit, self.window_ms, now_ms()]), self.command_timeout
        )
        return Verdict(bool(int(allowed)), int(retry))
