"""Where roomctl finds Redis, and the same domain objects roomd uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from roomd import config
from roomd.domain.overview import Overview
from roomd.domain.store import RoomStore, make_redis_client

DEFAULT_URL = "redis://127.0.0.1:6379/0"
TIMEOUT_SECONDS = 3.0


def resolve_redis_url(explicit: str | None) -> str:
    """``--redis-url``, else REDIS_URL / REDIS_HOST (env or .env), else a running dev roomd's Redis."""
    if explicit:
        return explicit
    url = config.redis_url_from_env(os.environ)
    if url:
        return url
    dev_socket = Path(os.environ.get("STATE_DIR") or ".roomd") / "redis.sock"
    if dev_socket.exists():
        return f"unix://{dev_socket.resolve()}"
    return DEFAULT_URL


@dataclass
class Backend:
    client: aioredis.Redis
    store: RoomStore
    overview: Overview

    async def close(self) -> None:
        await self.client.aclose()


def connect(url: str) -> Backend:
    """A store configured like roomd's (room TTL, code rules), failing fast when Redis is away."""
    settings = config.from_env({**os.environ, "ROOMD_ENV": "development"})  # roomctl needs no JWT secret
    client = make_redis_client(url, command_timeout=TIMEOUT_SECONDS, connect_timeout=TIMEOUT_SECONDS, max_retries=0)
    store = RoomStore.from_settings(client, settings, command_timeout=TIMEOUT_SECONDS)
    return Backend(client, store, Overview(client, TIMEOUT_SECONDS))
