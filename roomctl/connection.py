"""Where roomctl finds Redis and its room rules, and the same domain objects roomd uses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from roomd import config
from roomd.domain.overview import Overview
from roomd.domain.store import RoomStore, make_redis_client

DEFAULT_URL = "redis://127.0.0.1:6379/0"
REDIS_VARIABLES = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT")
TIMEOUT_SECONDS = 3.0  # connect and per-command: an unreachable Redis fails in seconds, not minutes


def resolve_redis_url(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--redis-url``, else REDIS_URL / REDIS_HOST (env or .env), else a dev roomd's Redis, else localhost.

    Raises ConfigError (naming the variable) for a malformed REDIS_URL / REDIS_PORT.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    url = config.redis_url_from_env(env)
    if url:
        return url
    dev_socket = Path(env.get("STATE_DIR") or ".roomd") / "redis.sock"
    if dev_socket.exists():
        return f"unix://{dev_socket.resolve()}"
    return DEFAULT_URL


def room_settings(environ: Mapping[str, str] | None = None) -> config.Settings:
    """roomd's settings (ROOM_TTL_SECONDS, code rules, ...) without roomd's production demands.

    roomctl needs no JWT secret, so the environment is read with development semantics; the Redis
    variables are left to :func:`resolve_redis_url` (``--redis-url`` wins over a broken REDIS_URL).
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k not in REDIS_VARIABLES}
    return config.from_env({**env, "ROOMD_ENV": "development"})


@dataclass
class Backend:
    client: aioredis.Redis
    store: RoomStore
    overview: Overview

    async def close(self) -> None:
        await self.client.aclose()


def connect(url: str, settings: config.Settings) -> Backend:
    """A store configured like roomd's (room TTL, code rules), failing fast when Redis is away."""
    client = make_redis_client(url, command_timeout=TIMEOUT_SECONDS, connect_timeout=TIMEOUT_SECONDS, max_retries=0)
    store = RoomStore.from_settings(client, settings, command_timeout=TIMEOUT_SECONDS)
    return Backend(client, store, Overview(client, TIMEOUT_SECONDS))
