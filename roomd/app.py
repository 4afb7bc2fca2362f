"""Wiring: build the services and the Tornado application from settings."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import tornado.web

from roomd.bus import RoomBus
from roomd.config import Settings
from roomd.domain.store import RoomStore, make_redis_client
from roomd.domain.throttle import Throttle
from roomd.domain.tokens import TokenIssuer
from roomd.protocol import protocol_dir
from roomd.transport import http
from roomd.transport.commands import build_table
from roomd.transport.context import Services
from roomd.transport.hub import Hub
from roomd.transport.websocket import RoomSocket, resync_rooms

STATIC_DIR = Path(__file__).with_name("static")
CODE_PATTERN = r"([^/]+)"


def build_services(settings: Settings, redis_url: str) -> Services:
    client = make_redis_client(
        redis_url,
        command_timeout=settings.redis_command_timeout,
        connect_timeout=settings.redis_connect_timeout,
        max_retries=settings.redis_max_retries,
    )
    store = RoomStore(
        client,
        ttl_seconds=settings.room_ttl_seconds,
        code_alphabet=settings.room_code_alphabet,
        code_length=settings.room_code_length,
        max_users=settings.room_max_users,
        command_timeout=settings.redis_command_timeout,
    )
    hub = Hub()
    bus = RoomBus(redis_url, client, hub.deliver, connect_timeout=settings.redis_connect_timeout)
    tokens = TokenIssuer(settings.jwt_secret, settings.room_ttl_seconds)
    throttle = Throttle(client, settings.throttle_limit, settings.throttle_ttl_ms, settings.redis_command_timeout)
    services = Services(settings=settings, store=store, tokens=tokens, bus=bus, hub=hub, throttle=throttle)
    bus.on_resubscribed = functools.partial(resync_rooms, services)
    return services


def make_app(services: Services) -> tornado.web.Application:
    s = services.settings
    return tornado.web.Application(
        [
            (r"/health", http.HealthHandler),
            (r"/rooms", http.CreateRoomHandler),
            (rf"/rooms/{CODE_PATTERN}", http.RoomHandler),
            (rf"/rooms/{CODE_PATTERN}/join", http.JoinRoomHandler),
            (rf"/rooms/{CODE_PATTERN}/rejoin", http.RejoinRoomHandler),
            (r"/ws", RoomSocket, {"services": services, "commands": build_table()}),
            (r"/()", tornado.web.StaticFileHandler, {"path": str(STATIC_DIR), "default_filename": "index.html"}),
            (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(STATIC_DIR)}),
            (r"/client/(.*)", tornado.web.StaticFileHandler, {"path": str(protocol_dir() / "client")}),
        ],
        default_handler_class=http.NotFoundHandler,
        services=services,
        websocket_ping_interval=s.ws_ping_interval or None,
        websocket_max_message_size=s.ws_max_message_bytes,
        compress_response=False,
        log_function=_quiet_log,
    )


def _quiet_log(handler: tornado.web.RequestHandler) -> None:
    """Access log without query strings: tokens in ``?token=`` must never reach logs."""
    status = handler.get_status()
    logger = logging.getLogger("roomd.access")
    if status >= 500:
        level = logging.ERROR
    elif status >= 400:
        level = logging.INFO
    else:
        level = logging.DEBUG
    if logger.isEnabledFor(level):
        request = handler.request
        logger.log(level, "%d %s %s %.1fms", status, request.method, request.path, 1000 * request.request_time())
