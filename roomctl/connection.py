"""Where roomctl finds Redis and its room rules, and the same domain objects roomd uses.

Precedence, highest first: explicit flags (``--redis-url``), real environment
variables, then roomd's environment file (``--env-file``, else
``ROOMCTL_ENV_FILE``, else ``./.env``, else ``/etc/roomd/roomd.env``), then the
defaults (a development roomd's private Redis, else localhost). Reading roomd's
own file by default is what keeps an admin action on a systemd host from using
other room rules (TTL) or another Redis than roomd.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from dotenv import dotenv_values

from roomd import config
from roomd.domain.overview import Overview
from roomd.domain.redis_target import RedisTarget, SingleTarget, check_supported, target_from_settings
from roomd.domain.store import RoomStore

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SYSTEM_ENV_FILE = Path("/etc/roomd/roomd.env")  # systemd/roomd.service: EnvironmentFile=
LOCAL_ENV_FILE = Path(".env")  # roomd's own default, in the directory it runs from
ENV_FILE_VARIABLE = "ROOMCTL_ENV_FILE"
REDIS_VARIABLES = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", *config.TOPOLOGY_VARIABLES)
TIMEOUT_SECONDS = 3.0  # connect and per-command: an unreachable Redis fails in seconds, not minutes


def env_file(flag: str | None, environ: Mapping[str, str] | None = None) -> tuple[Path | None, bool]:
    """The environment file to read and whether it was named explicitly (then it must exist).

    ``--env-file PATH``, else ``ROOMCTL_ENV_FILE``, else ``./.env`` if present, else
    ``/etc/roomd/roomd.env`` if present. An empty flag or variable means no file.
    """
    env = os.environ if environ is None else environ
    named = flag if flag is not None else env.get(ENV_FILE_VARIABLE)
    if named is not None:
        return (Path(named) if named.strip() else None), True
    for candidate in (LOCAL_ENV_FILE, SYSTEM_ENV_FILE):
        if candidate.exists():
            return candidate, False
    return None, False


def read_environment(flag: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables roomctl works with: the environment file's, overridden by real variables.

    Raises ConfigError when a named file is missing, or any chosen file cannot be read
    (``/etc/roomd/roomd.env`` is usually readable by root only): silently ignoring it
    would act on another Redis, or with other room rules, than roomd.
    """
    env = os.environ if environ is None else environ
    path, explicit = env_file(flag, env)
    if path is None:
        return dict(env)
    if explicit and not path.exists():
        raise config.ConfigError(f"environment file {path} not found (--env-file '' reads none)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise config.ConfigError(
            f"cannot read environment file {path} ({reason}); run roomctl as a user who can read it, "
            "or choose another with --env-file PATH or ROOMCTL_ENV_FILE ('' reads none)"
        ) from None
    values = {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
    return {**values, **env}  # real variables win over the file, as in roomd


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


def resolve_target(explicit: str | None, environ: Mapping[str, str] | None = None) -> RedisTarget:
    """Where roomd's Redis is: ``--redis-url`` (one Redis) wins; else REDIS_SENTINELS or
    REDIS_CLUSTER_NODES (with their passwords) as roomd reads them; else :func:`resolve_redis_url`.

    Raises ConfigError, naming the variables, for the combinations roomd refuses too.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return SingleTarget(explicit)
    topology = config.redis_topology_from_env(env)
    if not topology:
        return SingleTarget(resolve_redis_url(None, env))
    target = target_from_settings(config.Settings(**topology))  # type: ignore[arg-type]
    check_supported(target)
    return target


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


def connect(target: RedisTarget | str, settings: config.Settings, timeout: float = TIMEOUT_SECONDS) -> Backend:
    """A store configured like roomd's (room TTL, code rules), failing fast when Redis is away."""
    if isinstance(target, str):
        target = SingleTarget(target)
    client = target.command_client(command_timeout=timeout, connect_timeout=timeout, max_retries=0)
    # The room scripts SPUBLISH on a Cluster (roomd's sockets listen with SSUBSCRIBE): decided by the
    # target, since roomctl's room settings never carry the Redis variables (room_settings).
    store = RoomStore.from_settings(client, settings, command_timeout=timeout, sharded_pubsub=target.kind == "cluster")
    return Backend(client, store, Overview(client, timeout, instance_timeout_ms=settings.instance_timeout_ms))
