"""One roomd process: listen, run background duties, and drain gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from roomd import __version__, config, sdnotify
from roomd.app import build_services, make_app
from roomd.domain.errors import StoreUnavailable
from roomd.domain.store import INSTANCES_KEY, now_ms
from roomd.protocol import CloseCode
from roomd.transport.context import Services

log = logging.getLogger("roomd")

SWEEP_INTERVAL = 1.0  # seconds between expiry sweeps and instance heartbeats
INSTANCE_TTL_MS = 15_000


async def serve(
    settings: config.Settings,
    redis_url: str,
    *,
    reuse_port: bool = False,
    on_ready: Callable[[], object] | None = None,
    notify_stopping: bool = True,
) -> None:
    """Serve until SIGTERM/SIGINT, then drain; ``on_ready`` runs once listening and subscribed."""
    services = build_services(settings, redis_url)
    server = HTTPServer(
        make_app(services),
        max_body_size=max(settings.http_max_body_bytes, 1 << 20),
        max_header_size=16 * 1024,
        idle_connection_timeout=60,
        body_timeout=30,
    )
    sockets = bind_sockets(settings.port, settings.host or None, reuse_port=reuse_port, backlog=1024)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    await services.bus.start(wait=settings.redis_connect_timeout)
    try:
        await services.store.ping()
    except StoreUnavailable:
        log.error("Redis does not answer yet; serving 503 REDIS_UNAVAILABLE until it does")
    instance = f"{socket.gethostname()}:{os.getpid()}:{port}"
    duties = asyncio.create_task(_background_duties(services, instance))
    log.info("roomd %s listening on http://%s:%d (pid %d)", __version__, settings.host, port, os.getpid())
    tune_gc()
    if on_ready is not None:
        on_ready()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _force_exit)
    if notify_stopping:
        sdnotify.notify("STOPPING=1")
    timeout = settings.shutdown_timeout_ms / 1000
    try:
        await asyncio.wait_for(drain(services, server, duties, instance), timeout)
    except TimeoutError:
        log.warning("drain did not finish within SHUTDOWN_TIMEOUT_MS=%d; exiting", settings.shutdown_timeout_ms)
    log.info("roomd stopped")


def tune_gc() -> None:
    """Fewer, cheaper garbage collections under fan-out.

    Every open socket holds dozens of GC-tracked objects and a busy room
    server allocates short-lived ones at a high rate, so the default
    generation-0 threshold (700) triggers collections that walk all of them.
    Start-up objects are frozen out of collection for good, and the
    thresholds raised; measured on 2 cores, 100 rooms x 10 members, closed
    loop: 36.7k -> 39.8k deliveries/s, p99 61 -> 48 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _force_exit() -> None:
    log.warning("second signal: exiting now")
    os._exit(1)


async def drain(services: Services, server: HTTPServer, duties: asyncio.Task[None], instance: str) -> None:
    """Stop accepting, close every socket with 1001 (members stay members), finish in-flight work."""
    services.draining = True  # /health answers 503 "draining" from now on
    server.stop()
    log.info("draining: closing %d socket(s)", len(services.hub))
    for sock in services.hub.sockets():
        sock.close(CloseCode.GOING_AWAY, "GOING_AWAY")  # type: ignore[attr-defined]
    while len(services.hub):  # each close marks its user disconnected in Redis
        await asyncio.sleep(0.02)
    while services.tasks:
        await asyncio.gather(*services.tasks, return_exceptions=True)
    while services.inflight > 0:  # in-flight HTTP requests finish (the caller's timeout bounds this)
        await asyncio.sleep(0.02)
    await server.close_all_connections()
    duties.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await duties
    with contextlib.suppress(Exception):
        await services.store.client.zrem(INSTANCES_KEY, instance)
    await services.bus.close()
    await services.store.client.aclose()


async def _background_duties(services: Services, instance: str) -> None:
    """Expiry sweep (tells members of rooms Redis expired), host grace sweep, instance heartbeat."""
    client = services.store.client
    grace_ms = services.settings.host_grace_seconds * 1000
    while True:
        try:
            await services.store.expire_due_rooms()
            await services.store.migrate_absent_hosts(grace_ms)
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
