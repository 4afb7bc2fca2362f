"""Process lifecycle: configuration, the dev-mode Redis, listening, background duties, drain."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from roomd import __version__, config, logs, sdnotify
from roomd.app import build_services, make_app
from roomd.devredis import DevRedis, DevRedisError
from roomd.domain.errors import StoreUnavailable
from roomd.domain.store import INSTANCES_KEY, now_ms
from roomd.protocol import CloseCode
from roomd.transport.context import Services

log = logging.getLogger("roomd")

SWEEP_INTERVAL = 1.0  # seconds between expiry sweeps and instance heartbeats
INSTANCE_TTL_MS = 15_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="roomd", description="Real-time room server (HTTP + WebSocket).")
    parser.add_argument("--version", action="version", version=f"roomd {__version__}")
    parser.add_argument("--env-file", default=".env", help="optional dotenv file (default: .env)")
    args = parser.parse_args(argv)

    config.load_dotenv_file(args.env_file)
    try:
        settings = config.from_env()
    except config.ConfigError as exc:
        print(f"roomd: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)

    dev_redis: DevRedis | None = None
    redis_url = settings.redis_url
    if settings.development:
        log.warning("DEVELOPMENT MODE (ROOMD_ENV=development): not for production")
    if redis_url is None:
        dev_redis = DevRedis(settings.state_dir)
        try:
            redis_url = dev_redis.start()
        except DevRedisError as exc:
            print(f"roomd: {exc}", file=sys.stderr)
            return 2
        log.warning("development mode: started a private Redis at %s (no persistence)", redis_url)
    if settings.jwt_secret_ephemeral:
        log.warning("development mode: no JWT_SECRET set; using an ephemeral secret (tokens die on restart)")
    try:
        asyncio.run(serve(settings, redis_url))
    except KeyboardInterrupt:
        pass
    finally:
        if dev_redis is not None:
            dev_redis.stop()
    return 0


async def serve(settings: config.Settings, redis_url: str) -> None:
    services = build_services(settings, redis_url)
    server = HTTPServer(
        make_app(services),
        max_body_size=max(settings.http_max_body_bytes, 1 << 20),
        max_header_size=16 * 1024,
        idle_connection_timeout=60,
        body_timeout=30,
    )
    sockets = bind_sockets(settings.port, settings.host or None)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    await services.bus.start(wait=settings.redis_connect_timeout)
    try:
        await services.store.ping()
    except StoreUnavailable:
        log.error("Redis does not answer yet; serving 503 REDIS_UNAVAILABLE until it does")
    instance = f"{socket.gethostname()}:{os.getpid()}:{port}"
    duties = asyncio.create_task(_background_duties(services, instance))
    sdnotify.notify("READY=1")
    log.info("roomd %s listening on http://%s:%d (ws path /ws)", __version__, settings.host, port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: os._exit(1))  # a second signal forces the exit
    await drain(services, server, settings.shutdown_timeout_ms / 1000)
    duties.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await duties
    with contextlib.suppress(Exception):
        await services.store.client.zrem(INSTANCES_KEY, instance)
    await services.bus.close()
    await services.store.client.aclose()
    log.info("roomd stopped")


async def drain(services: Services, server: HTTPServer, timeout: float) -> None:
    """Stop accepting, close every socket with 1001, let in-flight work finish."""
    sdnotify.notify("STOPPING=1")
    log.info("draining: closing %d socket(s)", len(services.hub))
    services.draining = True
    server.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for sock in services.hub.sockets():
        sock.close(CloseCode.GOING_AWAY, "GOING_AWAY")  # type: ignore[attr-defined]
    while (len(services.hub) or services.tasks) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), max(0.0, deadline - loop.time()))


async def _background_duties(services: Services, instance: str) -> None:
    """Expiry sweep (tells members of rooms Redis expired) and the instance heartbeat."""
    client = services.store.client
    while True:
        try:
            await services.store.expire_due_rooms()
            now = now_ms()
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(INSTANCES_KEY, {instance: now})
                pipe.zremrangebyscore(INSTANCES_KEY, "-inf", now - INSTANCE_TTL_MS)
                await pipe.execute()
        except (StoreUnavailable, OSError) as exc:
            log.debug("background duties skipped: %s", exc)
        except Exception:
            log.exception("background duties failed")
        await asyncio.sleep(SWEEP_INTERVAL)
