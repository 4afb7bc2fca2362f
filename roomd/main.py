"""The ``roomd`` command: configuration, the development Redis, then one process or N workers.

Exit status: 0 after a clean stop (SIGTERM/SIGINT drained), 1 on a failure at run time
(including a second signal, or ``--workers`` whose workers keep crashing), 2 when roomd
cannot start as configured: a configuration error, a listen address in use or not
available, an unusable STATE_DIR. The systemd units use ``RestartPreventExitStatus=2``:
restarting cannot fix those, so systemd does not loop.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys

from roomd import __version__, config, logs, protocol, sdnotify
from roomd.devredis import DevRedis, DevRedisError
from roomd.domain.redis_target import check_supported, target_from_settings
from roomd.server import ListenError, serve
from roomd.workers import run_workers

log = logging.getLogger("roomd")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="roomd",
        description="Real-time room server (HTTP + WebSocket), Redis-backed. Configured by environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"roomd {__version__}")
    parser.add_argument("--env-file", default=".env", help="optional dotenv file (default: .env)")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes sharing the port via SO_REUSEPORT (default: WORKERS or 1)"
    )
    parser.add_argument("--port", type=int, default=None, help="listen port, overriding PORT (e.g. roomd@.service)")
    args = parser.parse_args(argv)

    config.load_dotenv_file(args.env_file)
    try:
        settings = config.from_env()
        if args.port is not None:
            settings = dataclasses.replace(settings, port=config.parse_port("--port", str(args.port)))
        workers = settings.workers if args.workers is None else args.workers
        if not 1 <= workers <= 256:
            raise config.ConfigError(f"--workers must be between 1 and 256, got {workers}")
        if workers > 1 and settings.port == 0:
            raise config.ConfigError("PORT must be fixed (not 0) when running several workers")
        if settings.redis_topology != "single":
            check_supported(target_from_settings(settings))
        if settings.game_schemas_dir is not None:
            protocol.game_validators(str(settings.game_schemas_dir))  # compiled now, before listening
    except (config.ConfigError, protocol.GameSchemaError) as exc:
        print(f"roomd: configuration error: {exc}", file=sys.stderr)
        return 2
    passwords = (settings.redis_password or "", settings.redis_sentinel_password or "")
    logs.configure(settings.log_level, settings.log_format, secrets=(settings.jwt_secret, *passwords))  # scrubbed

    dev_redis: DevRedis | None = None
    redis_url = settings.redis_url
    if settings.development:
        log.warning("DEVELOPMENT MODE (ROOMD_ENV=development): not for production")
    if settings.redis_topology != "single":
        log.info("Redis: %s", target_from_settings(settings).describe())
    try:
        if redis_url is None and settings.redis_topology == "single":
            dev_redis = DevRedis(settings.state_dir)
            try:
                redis_url = dev_redis.start()
            except DevRedisError as exc:
                print(f"roomd: {exc}", file=sys.stderr)
                return 2
            log.warning("development mode: started a private Redis at %s (no persistence)", redis_url)
        if settings.jwt_secret_ephemeral:
            log.warning("development mode: no JWT_SECRET set; using an ephemeral secret (tokens die on restart)")
        if workers > 1:
            return run_workers(settings, redis_url, workers)
        asyncio.run(serve(settings, redis_url, on_ready=lambda: sdnotify.notify("READY=1")))
        return 0
    except ListenError as exc:  # a busy port: one line, and exit 2 (systemd: RestartPreventExitStatus=2)
        print(f"roomd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        if dev_redis is not None:
            dev_redis.stop()
