"""Configuration is validated at start, with messages naming the variable."""

from __future__ import annotations

import pytest

from roomd.config import ConfigError, from_env, redis_url_from_env

PROD = {"ROOMD_ENV": "production", "JWT_SECRET": "x" * 32, "REDIS_URL": "redis://localhost:6380/0"}


def test_defaults_in_development() -> None:
    s = from_env({})
    assert s.development and s.port == 3000 and s.redis_url is None
    assert s.jwt_secret_ephemeral and len(s.jwt_secret) >= 32
    assert s.throttle_ttl_ms == 60_000 and s.throttle_limit == 20 and s.shutdown_timeout_ms == 10_000
    assert s.redis_max_retries == 3 and s.redis_connect_timeout_ms == 10_000 and s.redis_command_timeout_ms == 5_000
    assert s.cors_origins == ("*",)


def test_production_settings() -> None:
    s = from_env({**PROD, "PORT": "8080", "CORS_ORIGINS": "https://a.example, https://b.example/"})
    assert s.port == 8080 and not s.jwt_secret_ephemeral
    assert s.cors_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"ROOM_CODE_LENGTH": "0"}, "ROOM_CODE_LENGTH"),
        ({"ROOM_CODE_ALPHABET": "ABCA"}, "ROOM_CODE_ALPHABET"),
        ({"ROOM_CODE_ALPHABET": "abA"}, "ROOM_CODE_ALPHABET"),
        ({"ROOM_CODE_ALPHABET": "A-B"}, "ROOM_CODE_ALPHABET"),
        ({"ROOM_MAX_USERS": "0"}, "ROOM_MAX_USERS"),
        ({"ROOM_TTL_SECONDS": "x"}, "ROOM_TTL_SECONDS"),
        ({"USER_DISPLAY_NAME_MIN_LENGTH": "5", "USER_DISPLAY_NAME_MAX_LENGTH": "4"}, "USER_DISPLAY_NAME_MIN_LENGTH"),
        ({"THROTTLE_LIMIT": "-1"}, "THROTTLE_LIMIT"),
        ({"THROTTLE_TTL_MS": "1.5"}, "THROTTLE_TTL_MS"),
        ({"SHUTDOWN_TIMEOUT_MS": "soon"}, "SHUTDOWN_TIMEOUT_MS"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://host:port"}, "REDIS_URL"),
        ({"REDIS_PORT": "6379"}, "REDIS_PORT"),
        ({"REDIS_HOST": "h", "REDIS_PORT": "x"}, "REDIS_PORT"),
        ({"REDIS_MAX_RETRIES": "many"}, "REDIS_MAX_RETRIES"),
        ({"CORS_ORIGINS": "ftp://x"}, "CORS_ORIGINS"),
        ({"WS_PING_INTERVAL": "-1"}, "WS_PING_INTERVAL"),
        ({"WS_MAX_MESSAGE_BYTES": "10"}, "WS_MAX_MESSAGE_BYTES"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"ROOMD_ENV": "staging"}, "ROOMD_ENV"),
        ({"ROOMD_ENV": "production", "REDIS_URL": "redis://h:1/0"}, "JWT_SECRET"),
        ({"ROOMD_ENV": "production", "REDIS_URL": "redis://h:1/0", "JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"ROOMD_ENV": "production", "JWT_SECRET": "x" * 32}, "REDIS_URL"),
    ],
)
def test_wrong_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        from_env(env)


def test_secret_is_not_in_settings_repr() -> None:
    assert "x" * 32 not in repr(from_env(PROD))


def test_redis_host_and_port() -> None:
    assert redis_url_from_env({"REDIS_HOST": "cache", "REDIS_PORT": "6390"}) == "redis://cache:6390/0"
    assert redis_url_from_env({"REDIS_URL": "unix:///run/redis.sock"}) == "unix:///run/redis.sock"
    assert redis_url_from_env({}) is None
