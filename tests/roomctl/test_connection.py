"""Where roomctl looks for Redis: --redis-url, then roomd's variables (env or .env), then a dev roomd."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from roomctl import connection
from roomctl.cli import cli
from roomctl.connection import DEFAULT_URL, env_file, read_environment, resolve_redis_url, room_settings
from roomd.config import ConfigError
from roomd.domain.keys import room_key
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import CLEAN_ENV, as_json, invoke
from tests.roomctl.test_live import ENV, ROOMCTL
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


def test_environment_file_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "etc" / "roomd.env"
    monkeypatch.setattr(connection, "SYSTEM_ENV_FILE", system)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert env_file(None, {}) == (None, False)  # nothing there: no file
    system.parent.mkdir()
    system.write_text("REDIS_URL=redis://roomd-host:6379/0\n")
    assert env_file(None, {}) == (system, False)  # a systemd host: roomd's own file, no flag needed
    Path(".env").write_text("REDIS_URL=redis://dev:6379/0\n")
    assert env_file(None, {}) == (Path(".env"), False)  # a checkout: the .env roomd reads from here
    assert env_file(None, {"ROOMCTL_ENV_FILE": "/srv/roomd.env"}) == (Path("/srv/roomd.env"), True)
    assert env_file("/opt/x.env", {"ROOMCTL_ENV_FILE": "/srv/roomd.env"}) == (Path("/opt/x.env"), True)
    assert env_file("", {"ROOMCTL_ENV_FILE": "/srv/roomd.env"}) == (None, True)  # '' reads none
    assert env_file(None, {"ROOMCTL_ENV_FILE": ""}) == (None, True)


def test_real_variables_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "roomd.env"
    path.write_text("REDIS_URL=redis://file:6379/0\nROOM_TTL_SECONDS=60\n")
    environ = read_environment(str(path), {"ROOM_TTL_SECONDS": "900"})
    assert environ["REDIS_URL"] == "redis://file:6379/0" and environ["ROOM_TTL_SECONDS"] == "900"
    assert resolve_redis_url("redis://flag:1/0", environ) == "redis://flag:1/0"  # and flags win over both


async def test_system_env_file_is_read_by_default(
    redis_server: RedisServer, store: RoomStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a systemd host, roomctl with no flag reaches roomd's Redis and re-arms rooms with roomd's TTL."""
    system = tmp_path / "roomd.env"
    system.write_text(f"JWT_SECRET=unused-here\nREDIS_URL={redis_server.url}\nROOM_TTL_SECONDS=900\n")
    monkeypatch.setattr(connection, "SYSTEM_ENV_FILE", system)
    monkeypatch.chdir(tmp_path)  # no ./.env here
    host = await store.create_room("Ana")
    room = json.loads(await store.client.get(room_key(host.room_code)))
    room.pop("ttlMs", None)  # a record without its own TTL: the configured one applies
    await store.client.set(room_key(host.room_code), json.dumps(room), px=5_000)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["rooms", "extend", host.room_code], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert 890_000 < await store.client.pttl(room_key(host.room_code)) <= 900_000


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--env-file", "/nonexistent/roomd.env"], {}, "environment file /nonexistent/roomd.env not found"),
        ([], {"ROOMCTL_ENV_FILE": "/nonexistent/roomd.env"}, "environment file /nonexistent/roomd.env not found"),
        (["--env-file", "/"], {}, "cannot read environment file / (Is a directory)"),
    ],
)
def test_a_missing_or_unreadable_env_file_is_a_configuration_error(args, env, message) -> None:
    result = CliRunner().invoke(cli, [*args, "stats"], env={**CLEAN_ENV, **env})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: configuration: {message}") and len(result.stderr.splitlines()) == 1


def test_roomctl_env_file_for_the_console_script(redis_server: RedisServer, tmp_path: Path) -> None:
    path = tmp_path / "roomd.env"
    path.write_text(f"REDIS_URL={redis_server.url}\n")
    done = subprocess.run([ROOMCTL, "stats", "--json"], env={**ENV, "ROOMCTL_ENV_FILE": str(path)},
                          capture_output=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout)["rooms"], int)
