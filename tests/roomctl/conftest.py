"""Run roomctl in-process (click's CliRunner) against the private redis-server, isolated from the caller's setup."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from click.testing import CliRunner, Result

from roomctl.cli import cli
from roomd.domain import keys
from roomd.domain.store import RoomStore
from tests.support.processes import RedisServer

# Variables that would change roomctl's behaviour if the person running the tests had them set.
CLEAN_ENV: dict[str, str | None] = {
    name: None
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "ROOMCTL_REDIS_URL", "STATE_DIR", "FORCE_COLOR",
                 "TTY_COMPATIBLE", "NO_COLOR", "ROOM_TTL_SECONDS", "ROOM_CODE_ALPHABET", "ROOM_CODE_LENGTH",
                 "ROOM_MAX_USERS", "ROOMD_ENV", "ROOMCTL_ENV_FILE", "REDIS_KEY_PREFIX",
                 "INSTANCE_TIMEOUT_MS")
}  # fmt: skip

Roomctl = Callable[..., Awaitable[Result]]


def invoke(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
    """roomctl with no environment file and a clean environment (CliRunner restores the variables afterwards,
    and the key layout roomctl configures for its process, REDIS_KEY_PREFIX, is restored too)."""
    with keys.using(keys.layout().prefix):
        return CliRunner().invoke(cli, ["--env-file", "", *args], input=input,
                                  env={**CLEAN_ENV, **(env or {})}, prog_name="roomctl")  # fmt: skip


@pytest.fixture
def roomctl(redis_server: RedisServer, redis_client) -> Roomctl:  # redis_client: flushed per test
    """``await roomctl("rooms", "list")``: runs in a thread, so the test's event loop stays free."""

    async def run(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        return await asyncio.to_thread(invoke, "--redis-url", redis_server.url, *args, input=input, env=env)

    return run


def as_json(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def room_data_keys(store: RoomStore) -> list[bytes]:
    """Every key but the live roomd instances' own (heartbeats, socket indexes): the shared
    test roomd writes those at any moment, whatever the test does with rooms."""
    return [key for key in await store.client.keys("*") if not key.startswith(b"roomd:")]
