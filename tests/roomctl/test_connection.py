"""Where roomctl looks for Redis: --redis-url, then roomd's variables (env or .env), then a dev roomd."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomctl.connection import DEFAULT_URL, resolve_redis_url, room_settings
from roomd.config import ConfigError
from tests.roomctl.conftest import as_json, invoke
from tests.support.processes import RedisServer


def test_resolution_order(tmp_path: Path) -> None:
    state = {"STATE_DIR": str(tmp_path)}
    assert resolve_redis_url(None, state) == DEFAULT_URL  # nothing configured, no dev roomd here
    (tmp_path / "redis.sock").touch()  # a roomd in development mode runs its private Redis here
    assert resolve_redis_url(None, state) == f"unix://{tmp_path.resolve()}/redis.sock"
    assert resolve_redis_url(None, {**state, "REDIS_HOST": "cache", "REDIS_PORT": "6380"}) == "redis://cache:6380/0"
    assert resolve_redis_url(None, {**state, "REDIS_URL": "redis://a:1/2", "REDIS_HOST": "b"}) == "redis://a:1/2"
    assert resolve_redis_url("redis://x:3/0", {**state, "REDIS_URL": "redis://a:1/2"}) == "redis://x:3/0"
    with pytest.raises(ConfigError, match="REDIS_URL"):
        resolve_redis_url(None, {"REDIS_URL": "localhost:6379"})


def test_room_rules_come_from_the_environment() -> None:
    settings = room_settings({"ROOM_TTL_SECONDS": "60", "ROOM_MAX_USERS": "4", "ROOMD_ENV": "production"})
    assert (settings.room_ttl_seconds, settings.room_max_users) == (60, 4)  # no JWT_SECRET needed


def test_dotenv_file_is_read(redis_server: RedisServer, tmp_path: Path) -> None:
    env_file = tmp_path / "roomd.env"
    env_file.write_text(f"REDIS_URL={redis_server.url}\n")
    result = invoke("--env-file", str(env_file), "--json", "stats")  # CliRunner restores REDIS_URL afterwards
    assert isinstance(as_json(result)["rooms"], int)  # reached the private Redis named in the file
    overridden = invoke("--env-file", str(env_file), "stats", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert overridden.exit_code == 3  # a real environment variable wins over the file, as in roomd
