"""Settings from the environment (and an optional ``.env``), validated once at start.

A wrong value stops roomd before it listens, with a message naming the variable:
a misconfigured server that half-works is worse than one that refuses to start.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

MIN_SECRET_BYTES = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A configuration variable is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    host: str = "0.0.0.0"
    port: int = 3000
    jwt_secret: str = dataclasses.field(default="", repr=False)
    jwt_secret_ephemeral: bool = False
    redis_url: str | None = None
    redis_max_retries: int = 3
    redis_connect_timeout_ms: int = 10_000
    redis_command_timeout_ms: int = 5_000
    # Sentinel or Cluster instead of one Redis (roomd/domain/redis_target.py); () when REDIS_URL is used.
    redis_cluster_nodes: tuple[tuple[str, int], ...] = ()
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    redis_username: str | None = None  # data nodes (Sentinel's master and replicas, Cluster nodes)
    redis_password: str | None = dataclasses.field(default=None, repr=False)
    redis_sentinel_username: str | None = None  # the Sentinels themselves
    redis_sentinel_password: str | None = dataclasses.field(default=None, repr=False)
    redis_key_prefix: str = ""  # before every key and channel name (roomd/domain/keys.py)
    cors_origins: tuple[str, ...] = ("*",)
    # The one default of each room rule (no I or O in codes: read as 1 and 0). RoomStore's
    # keyword defaults refer to these (Settings.room_code_alphabet, ...), never copy them.
    room_code_alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    room_code_length: int = 4
    room_max_users: int = 10
    room_ttl_seconds: int = 7_200
    instance_timeout_ms: int = 15_000  # a roomd instance whose heartbeat is older is dead: its members are disconnected
    display_name_min_length: int = 1
    display_name_max_length: int = 32
    throttle_ttl_ms: int = 60_000
    throttle_limit: int = 20
    shutdown_timeout_ms: int = 10_000
    ws_ping_interval: float = 25.0
    ws_max_message_bytes: int = 16_384
    http_max_body_bytes: int = 16_384
    http_header_timeout_ms: int = 5_000
    max_connections: int | None = None  # None: derived from RLIMIT_NOFILE at start (roomd/listener.py)
    max_connections_per_client: int | None = None  # None: a quarter of max_connections, at most 256; 0: no cap
    ws_max_buffer_bytes: int = 1_048_576
    ws_rate_limit: float = 20.0
    ws_rate_burst: int = 40
    ws_connect_limit: int = 60  # WebSocket upgrades per client address per THROTTLE_TTL_MS
    ws_connect_user_limit: int = 10  # WebSocket upgrades per user (token) per THROTTLE_TTL_MS
    trust_proxy: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_enabled: bool = True
    workers: int = 1
    worker_restart_delay_ms: int = 1_000  # first back-off of a worker restart; doubles per consecutive failure
    worker_start_attempts: int = 5  # consecutive failures before ready after which --workers gives up
    state_dir: Path = Path(".roomd")
    game_message_max_bytes: int = 8_192
    game_schemas_dir: Path | None = None
    room_state_max_keys: int = 256
    room_state_max_bytes: int = 262_144
    room_history_size: int = 256
    host_grace_seconds: int = 30
    audience_max: int = 10_000  # viewers admitted per room with an audience (then AUDIENCE_FULL)

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def redis_topology(self) -> str:
        """``cluster``, ``sentinel`` or ``single`` (REDIS_URL, or the development Redis)."""
        return "cluster" if self.redis_cluster_nodes else "sentinel" if self.redis_sentinels else "single"

    @property
    def redis_command_timeout(self) -> float:
        return self.redis_command_timeout_ms / 1000

    @property
    def redis_connect_timeout(self) -> float:
        return self.redis_connect_timeout_ms / 1000


def _int(name: str, raw: str, lo: int, hi: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return value


def parse_port(name: str, raw: str) -> int:
    return _int(name, raw, 0, 65535)


def _float(name: str, raw: str, lo: float) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= lo:
        raise ConfigError(f"{name} must be >= {lo}, got {value}")
    return value


def _auto_int(lo: int) -> Callable[[str, str], int | None]:
    """``auto`` (None: derived at start from the open-file limit, see roomd/listener.py) or an integer >= lo."""

    def parse(name: str, raw: str) -> int | None:
        return None if raw.strip().lower() == "auto" else _int(name, raw, lo)

    return parse


def _alphabet(name: str, raw: str) -> str:
    alphabet = raw.strip().upper()
    if len(alphabet) < 2:
        raise ConfigError(f"{name} needs at least 2 characters")
    if not alphabet.isascii() or not alphabet.isalnum():
        raise ConfigError(f"{name} may contain only ASCII letters and digits")
    duplicates = sorted({c for c in alphabet if alphabet.count(c) > 1})
    if duplicates:
        raise ConfigError(f"{name} has duplicate characters (case-insensitive): {''.join(duplicates)}")
    return alphabet


def _redis_url(name: str, raw: str) -> str:
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name} must start with redis://, rediss:// or unix://")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{name} has no host")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigError(f"{name} has no socket path")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port") from None
    return url


def _origins(name: str, raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not origins:
        raise ConfigError(f"{name} must be '*' or a comma-separated list of origins")
    for origin in origins:
        if origin != "*" and urlsplit(origin).scheme not in ("http", "https"):
            raise ConfigError(f"{name}: {origin!r} is not an http(s) origin")
    return origins


def redis_url_from_env(environ: Mapping[str, str]) -> str | None:
    """REDIS_URL, else redis://REDIS_HOST:REDIS_PORT/0, else None (development: a private Redis)."""
    raw = (environ.get("REDIS_URL") or "").strip()
    if raw:
        return _redis_url("REDIS_URL", raw)
    host = (environ.get("REDIS_HOST") or "").strip()
    if host:
        port = _int("REDIS_PORT", environ.get("REDIS_PORT") or "6379", 1, 65535)
        return f"redis://{host}:{port}/0"
    if (environ.get("REDIS_PORT") or "").strip():
        raise ConfigError("REDIS_PORT is set but REDIS_HOST is not")
    return None


SENTINEL_PORT, REDIS_PORT = 26379, 6379
TOPOLOGY_VARIABLES = (
    "REDIS_CLUSTER_NODES",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_SENTINEL_USERNAME",
    "REDIS_SENTINEL_PASSWORD",
)


def _addresses(name: str, raw: str, default_port: int) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (``[v6]:port``; a missing port is ``default_port``); never a URL."""
    found: list[tuple[str, int]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if "/" in item or "@" in item or any(c.isspace() for c in item):
            raise ConfigError(f"{name}: {item!r} is not host:port (a list of host:port, not URLs)")
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest and not rest.startswith(":"):
                raise ConfigError(f"{name}: {item!r} is not [address]:port")
            port_text = rest[1:]
        elif item.count(":") > 1:
            raise ConfigError(f"{name}: {item!r}: write an IPv6 address in brackets, [::1]:{default_port}")
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise ConfigError(f"{name}: {item!r} has no host")
        port = _int(name, port_text, 1, 65535) if port_text else default_port
        if (host, port) not in found:
            found.append((host, port))
    if not found:
        raise ConfigError(f"{name} must be a comma-separated list of host:port")
    return tuple(found)


def redis_topology_from_env(environ: Mapping[str, str]) -> dict[str, object]:
    """The Sentinel or Cluster settings (Settings field values), checked together.

    One Redis (REDIS_URL / REDIS_HOST), a Cluster (REDIS_CLUSTER_NODES) or Sentinels
    (REDIS_SENTINELS + REDIS_SENTINEL_MASTER): exactly one of them. A variable that has
    no effect in the chosen setup is refused, naming it, rather than silently ignored:
    a password that is not sent is an outage found late.
    """

    def get(name: str) -> str:
        return (environ.get(name) or "").strip()

    cluster, sentinels, master = get("REDIS_CLUSTER_NODES"), get("REDIS_SENTINELS"), get("REDIS_SENTINEL_MASTER")
    single = [n for n in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT") if get(n)]
    if cluster and sentinels:
        raise ConfigError("REDIS_CLUSTER_NODES and REDIS_SENTINELS are exclusive: set one of them")
    topology = "REDIS_CLUSTER_NODES" if cluster else "REDIS_SENTINELS" if sentinels else None
    if topology and single:
        raise ConfigError(f"{topology} and {', '.join(single)} are exclusive: set one way to reach Redis")
    if master and not sentinels:
        raise ConfigError("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not")
    if sentinels and not master:
        raise ConfigError("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master name the Sentinels monitor)")
    for name in ("REDIS_SENTINEL_USERNAME", "REDIS_SENTINEL_PASSWORD"):
        if get(name) and not sentinels:
            raise ConfigError(f"{name} is set but REDIS_SENTINELS is not")
    for name in ("REDIS_USERNAME", "REDIS_PASSWORD"):
        if get(name) and not topology:
            raise ConfigError(
                f"{name} applies to REDIS_SENTINELS or REDIS_CLUSTER_NODES; "
                "with REDIS_URL put it in the URL (redis://user:password@host:port/0)"
            )
    for user in ("REDIS_USERNAME", "REDIS_SENTINEL_USERNAME"):
        password = user.replace("USERNAME", "PASSWORD")
        if get(user) and not get(password):
            raise ConfigError(f"{user} is set but {password} is not (an ACL user needs its password)")
    if master and (any(c.isspace() for c in master) or len(master) > 256):
        raise ConfigError(f"REDIS_SENTINEL_MASTER must be a Sentinel master name, got {master!r}")
    values: dict[str, object] = {}
    if cluster:
        values["redis_cluster_nodes"] = _addresses("REDIS_CLUSTER_NODES", cluster, REDIS_PORT)
    if sentinels:
        values["redis_sentinels"] = _addresses("REDIS_SENTINELS", sentinels, SENTINEL_PORT)
        values["redis_sentinel_master"] = master
    for name in TOPOLOGY_VARIABLES[3:]:
        if get(name):  # a password is taken as written (edge spaces included), a username stripped
            values[name.lower()] = environ[name] if name.endswith("PASSWORD") else get(name)
    return values


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _networks(name: str, raw: str) -> tuple[str, ...]:
    """Trusted proxy addresses or CIDR ranges, validated now, matched in the HTTP layer."""
    import ipaddress

    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR range") from None
    return tuple(found)


def _key_prefix(name: str, raw: str) -> str:
    from roomd.domain.keys import check_prefix  # the rule's one owner (a leaf module: no cycle)

    try:
        return check_prefix(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}, got {raw!r}") from None


def _directory(name: str, raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_dir():
        raise ConfigError(f"{name}: {path} is not a directory")
    return path


def load_dotenv_file(path: str | os.PathLike[str] = ".env") -> None:
    """Merge ``.env`` into ``os.environ`` without overriding real environment variables."""
    if Path(path).is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build and validate :class:`Settings`; raise :class:`ConfigError` on the first problem."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}

    def take(name: str, field: str, parse: Callable[[str, str], T]) -> None:
        raw = env.get(name)
        if raw is not None and raw.strip() != "":
            values[field] = parse(name, raw)

    take("ROOMD_ENV", "env", _choice("development", "production"))
    take("HOST", "host", lambda n, r: r.strip())
    take("PORT", "port", parse_port)
    take("REDIS_MAX_RETRIES", "redis_max_retries", lambda n, r: _int(n, r, 0, 100))
    take("REDIS_CONNECT_TIMEOUT", "redis_connect_timeout_ms", lambda n, r: _int(n, r, 1))
    take("REDIS_COMMAND_TIMEOUT", "redis_command_timeout_ms", lambda n, r: _int(n, r, 1))
    take("REDIS_KEY_PREFIX", "redis_key_prefix", _key_prefix)
    take("CORS_ORIGINS", "cors_origins", _origins)
    take("ROOM_CODE_ALPHABET", "room_code_alphabet", _alphabet)
    take("ROOM_CODE_LENGTH", "room_code_length", lambda n, r: _int(n, r, 1, 32))
    take("ROOM_MAX_USERS", "room_max_users", lambda n, r: _int(n, r, 1, 10_000))
    take("ROOM_TTL_SECONDS", "room_ttl_seconds", lambda n, r: _int(n, r, 1))
    take("INSTANCE_TIMEOUT_MS", "instance_timeout_ms", lambda n, r: _int(n, r, 500))
    take("USER_DISPLAY_NAME_MIN_LENGTH", "display_name_min_length", lambda n, r: _int(n, r, 1, 1000))
    take("USER_DISPLAY_NAME_MAX_LENGTH", "display_name_max_length", lambda n, r: _int(n, r, 1, 1000))
    take("THROTTLE_TTL_MS", "throttle_ttl_ms", lambda n, r: _int(n, r, 1))
    take("THROTTLE_LIMIT", "throttle_limit", lambda n, r: _int(n, r, 1))
    take("SHUTDOWN_TIMEOUT_MS", "shutdown_timeout_ms", lambda n, r: _int(n, r, 0))
    take("WS_PING_INTERVAL", "ws_ping_interval", lambda n, r: _float(n, r, 0))
    take("WS_MAX_MESSAGE_BYTES", "ws_max_message_bytes", lambda n, r: _int(n, r, 256))
    take("HTTP_MAX_BODY_BYTES", "http_max_body_bytes", lambda n, r: _int(n, r, 256))
    take("HTTP_HEADER_TIMEOUT_MS", "http_header_timeout_ms", lambda n, r: _int(n, r, 100))
    take("MAX_CONNECTIONS", "max_connections", _auto_int(1))
    take("MAX_CONNECTIONS_PER_CLIENT", "max_connections_per_client", _auto_int(0))
    take("WS_MAX_BUFFER_BYTES", "ws_max_buffer_bytes", lambda n, r: _int(n, r, 1024))
    take("WS_RATE_LIMIT", "ws_rate_limit", lambda n, r: _float(n, r, 0.1))
    take("WS_RATE_BURST", "ws_rate_burst", lambda n, r: _int(n, r, 1))
    take("WS_CONNECT_LIMIT", "ws_connect_limit", lambda n, r: _int(n, r, 1))
    take("WS_CONNECT_USER_LIMIT", "ws_connect_user_limit", lambda n, r: _int(n, r, 1))
    take("TRUST_PROXY", "trust_proxy", _networks)
    take("LOG_LEVEL", "log_level", _choice(*LOG_LEVELS))
    take("LOG_FORMAT", "log_format", _choice("text", "json"))
    take("METRICS_ENABLED", "metrics_enabled", _bool)
    take("WORKERS", "workers", lambda n, r: _int(n, r, 1, 256))
    take("WORKER_RESTART_DELAY_MS", "worker_restart_delay_ms", lambda n, r: _int(n, r, 10, 60_000))
    take("WORKER_START_ATTEMPTS", "worker_start_attempts", lambda n, r: _int(n, r, 1, 1000))
    take("STATE_DIR", "state_dir", lambda n, r: Path(r.strip()))
    take("GAME_MESSAGE_MAX_BYTES", "game_message_max_bytes", lambda n, r: _int(n, r, 1))
    take("GAME_SCHEMAS_DIR", "game_schemas_dir", _directory)
    take("ROOM_STATE_MAX_KEYS", "room_state_max_keys", lambda n, r: _int(n, r, 0))
    take("ROOM_STATE_MAX_BYTES", "room_state_max_bytes", lambda n, r: _int(n, r, 0))
    take("ROOM_HISTORY_SIZE", "room_history_size", lambda n, r: _int(n, r, 1, 100_000))
    take("HOST_GRACE_SECONDS", "host_grace_seconds", lambda n, r: _int(n, r, 1))
    take("AUDIENCE_MAX", "audience_max", lambda n, r: _int(n, r, 1, 1_000_000))
    url = redis_url_from_env(env)
    if url is not None:
        values["redis_url"] = url
    values.update(redis_topology_from_env(env))

    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.display_name_min_length > settings.display_name_max_length:
        raise ConfigError("USER_DISPLAY_NAME_MIN_LENGTH must not exceed USER_DISPLAY_NAME_MAX_LENGTH")

    secret = env.get("JWT_SECRET") or ""
    if settings.development:
        if not secret:
            return dataclasses.replace(settings, jwt_secret=secrets.token_urlsafe(48), jwt_secret_ephemeral=True)
    else:
        if not secret:
            raise ConfigError("JWT_SECRET is required when ROOMD_ENV=production")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET is too weak: it needs at least {MIN_SECRET_BYTES} bytes")
        if settings.redis_url is None and settings.redis_topology == "single":
            raise ConfigError(
                "REDIS_URL (or REDIS_HOST, REDIS_SENTINELS, REDIS_CLUSTER_NODES) is required when ROOMD_ENV=production"
            )
    if settings.development and secret and len(secret.encode()) < MIN_SECRET_BYTES:
        logging.getLogger("roomd").warning(
            "JWT_SECRET is shorter than %d bytes (refused in production)", MIN_SECRET_BYTES
        )
    return dataclasses.replace(settings, jwt_secret=secret)


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip()
        value = value.upper() if allowed == LOG_LEVELS else value.lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse
