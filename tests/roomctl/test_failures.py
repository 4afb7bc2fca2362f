"""Exit codes and messages when Redis is away, the configuration is wrong, or the command line is."""

from __future__ import annotations

import pytest

from tests.roomctl.conftest import Roomctl, invoke
from tests.support.processes import free_port

EVERY_COMMAND = [
    ["rooms", "list"],
    ["rooms", "show", "ABCD"],
    ["rooms", "close", "ABCD", "--yes"],
    ["rooms", "lock", "ABCD"],
    ["rooms", "unlock", "ABCD"],
    ["users", "kick", "ABCD", "someone", "--yes"],
    ["users", "show", "ABCD", "someone"],
    ["migrate", "--yes"],
    ["stats"],
    ["events", "ABCD"],
    ["rooms", "transfer-host", "ABCD", "someone"],
    ["rooms", "extend", "ABCD"],
    ["users", "find", "ana"],
    ["rooms", "close", "--idle-for", "2h", "--yes"],
    ["rooms", "list", "--idle-for", "2h", "--host-name", "ana"],
    ["stats", "--watch", "1"],
    ["events", "--all"],
    ["rooms", "audience", "ABCD"],
    ["rooms", "poll", "ABCD"],
    ["rooms", "audience-lock", "ABCD", "--on"],
    ["rooms", "kick", "ABCD", "someone", "--yes"],
    ["rooms", "kick", "ABCD", "someone"],  # asks only after finding who it is
    ["rooms", "list", "--with-audience"],
]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: " ".join(a[:3]))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_unreachable_redis_is_exit_3(args: list[str], as_json: bool) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = invoke("--redis-url", url, *args, *(["--json"] if as_json else []))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: cannot reach Redis at {url} (")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_unreachable_unix_socket_and_password_is_not_shown() -> None:
    result = invoke("--redis-url", "unix:///nonexistent/redis.sock", "stats")
    assert result.exit_code == 3 and "No such file or directory" in result.stderr
    hidden = invoke("--redis-url", f"redis://admin:s3cret@127.0.0.1:{free_port()}/0", "stats")
    assert hidden.exit_code == 3 and "s3cret" not in hidden.stderr and "admin:***@127.0.0.1" in hidden.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROOM_TTL_SECONDS": "soon"}, "error: configuration: ROOM_TTL_SECONDS must be an integer, got 'soon'\n"),
        ({"REDIS_URL": "http://cache:6379"}, "error: configuration: REDIS_URL must start with redis://"),
        ({"REDIS_PORT": "6380"}, "error: configuration: REDIS_PORT is set but REDIS_HOST is not\n"),
    ],
)
def test_configuration_errors_are_exit_2(env: dict[str, str | None], message: str) -> None:
    result = invoke("rooms", "list", env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


async def test_redis_url_option_wins_over_a_broken_environment(roomctl: Roomctl) -> None:
    result = await roomctl("stats", "--json", env={"REDIS_URL": "http://cache:6379", "REDIS_PORT": "x"})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["rooms", "list", "--limit", "0"],
        ["rooms", "show"],
        ["nonsense"],
        ["--redis-url", "http://cache:6379", "stats"],
        ["stats", "--redis-url", "cache:6379"],
        ["rooms", "show", "AB-CD"],
        ["users", "kick", "ABCD"],
    ],
)
def test_usage_errors_are_exit_2(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and "Usage:" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [[], ["rooms"], ["users"], *([*a[:2], "--help"] if a[0] in ("rooms", "users") else [a[0], "--help"]
                                 for a in EVERY_COMMAND)],
)  # fmt: skip
def test_every_help_shows_examples(args: list[str]) -> None:
    result = invoke(*args, "--help")
    assert result.exit_code == 0
    examples = result.stdout.partition("Example")[2]
    assert examples and "roomctl " in examples, args
    assert result.stdout.startswith("Usage: roomctl ")
    if args not in (["rooms"], ["users"]):  # groups list their commands; every command takes both
        assert "--json" in result.stdout and "--redis-url" in result.stdout
