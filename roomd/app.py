"""Wiring: build the services and the Tornado application from settings."""

from __future__ import annotations

import functools
import logging
import mimetypes
from typing import Any

import tornado.routing
import tornado.web

from roomd.config import Settings
from roomd.domain.redis_target import target_from_settings
from roomd.domain.store import RoomStore
from roomd.domain.throttle import Throttle
from roomd.domain.tokens import TokenIssuer
from roomd.fanout import Hub, make_broker
from roomd.logs import safe_uri
from roomd.protocol import game_validators, package_path, preload, protocol_dir
from roomd.transport import frames, http
from roomd.transport.commands import GameRules, build_table
from roomd.transport.context import Services
from roomd.transport.metrics import Metrics, MetricsHandler
from roomd.transport.request_ids import request_id
from roomd.transport.websocket import RoomSocket

STATIC_DIR = package_path("roomd", "static")  # the lobby page, wherever roomd is installed
mimetypes.add_type("application/typescript", ".ts")  # /client/roomd.d.ts (the default guess is a Qt file type)
CODE_PATTERN = r"([^/]+)"


def build_services(settings: Settings, redis_url: str | None = None) -> Services:
    """``redis_url``: the development Redis when the settings name none (REDIS_URL, Sentinel, Cluster)."""
    target = target_from_settings(settings, redis_url)
    client = target.command_client(
        command_timeout=settings.redis_command_timeout,
        connect_timeout=settings.redis_connect_timeout,
        max_retries=settings.redis_max_retries,
    )
    store = RoomStore.from_settings(client, settings)
    hub = Hub(prepare=frames.wire)  # each event framed once for WebSocket, the same bytes to every socket
    # One Redis or Sentinel: PUBLISH/SUBSCRIBE; Cluster: SSUBSCRIBE on each room's shard (roomd/fanout).
    bus = make_broker(target, client, hub.deliver, connect_timeout=settings.redis_connect_timeout)
    bus.on_resubscribed = hub.resync
    tokens = TokenIssuer(settings.jwt_secret, settings.room_ttl_seconds)
    throttle = Throttle(client, settings.throttle_limit, settings.throttle_ttl_ms, settings.redis_command_timeout,
                        fail_open=settings.redis_topology == "cluster")  # fmt: skip
    services = Services(
        settings=settings, store=store, tokens=tokens, bus=bus, hub=hub, throttle=throttle, metrics=Metrics(hub, bus)
    )
    return services


def game_rules(settings: Settings) -> GameRules:
    """GAME_MESSAGE_MAX_BYTES and the compiled GAME_SCHEMAS_DIR (checked at start by main)."""
    schemas = game_validators(str(settings.game_schemas_dir)) if settings.game_schemas_dir is not None else None
    return GameRules(max_bytes=settings.game_message_max_bytes, schemas=schemas)


def make_app(services: Services) -> tornado.web.Application:
    preload()  # codes and schemas read now, not first on an error path (maybe out of descriptors)
    s = services.settings
    routes: list[tornado.routing.Rule | tuple[str, Any] | tuple[str, Any, dict[str, Any]]] = [
        (r"/health", http.HealthHandler),
        (r"/rooms", http.CreateRoomHandler),
        (rf"/rooms/{CODE_PATTERN}", http.RoomHandler),
        (rf"/rooms/{CODE_PATTERN}/join", http.JoinRoomHandler),
        (rf"/rooms/{CODE_PATTERN}/rejoin", http.RejoinRoomHandler),
        (rf"/rooms/{CODE_PATTERN}/audience", http.AudienceHandler),
        (r"/ws", RoomSocket, {"services": services, "commands": build_table(game_rules(s), services.nudges)}),
        (r"/()", http.StaticFiles, {"path": str(STATIC_DIR), "default_filename": "index.html"}),
        (r"/static/(.*)", http.StaticFiles, {"path": str(STATIC_DIR)}),
        (r"/client/(.*)", http.StaticFiles, {"path": str(protocol_dir() / "client")}),
    ]
    if s.metrics_enabled:
        routes.append((r"/metrics", MetricsHandler))
    return tornado.web.Application(
        routes,
        default_handler_class=http.NotFoundHandler,
        services=services,
        metrics=services.metrics,
        websocket_ping_interval=s.ws_ping_interval or None,
        websocket_max_message_size=s.ws_max_message_bytes,
        compress_response=False,
        log_function=functools.partial(log_request, services),
    )


_ROUTE_NAMES = {
    "HealthHandler": "/health",
    "CreateRoomHandler": "/rooms",
    "RoomHandler": "/rooms/:code",
    "JoinRoomHandler": "/rooms/:code/join",
    "RejoinRoomHandler": "/rooms/:code/rejoin",
    "AudienceHandler": "/rooms/:code/audience",
    "RoomSocket": "/ws",
    "StaticFiles": "static",
    "MetricsHandler": "/metrics",
}
_access_log = logging.getLogger("roomd.access")


def log_request(services: Services, handler: tornado.web.RequestHandler) -> None:
    """Access log and latency histogram. Query strings are redacted: tokens must never reach logs."""
    request = handler.request
    status = handler.get_status()
    route = _ROUTE_NAMES.get(type(handler).__name__, "unmatched")
    seconds = request.request_time()
    services.metrics.http_latency.labels(route, request.method or "", f"{status // 100}xx").observe(seconds)
    level = logging.ERROR if status >= 500 else logging.INFO
    if _access_log.isEnabledFor(level):
        _access_log.log(
            level,
            "%s %s %d %.1fms",
            request.method,
            safe_uri(request.path, request.query),
            status,
            1000 * seconds,
            extra={"requestId": request_id(request), "client": request.remote_ip},
        )
