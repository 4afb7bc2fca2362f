"""The HTTP API: JSON in, JSON out, and every error in one documented shape.

``{"statusCode", "code", "message"}`` for every failure, including malformed
JSON, unknown routes, wrong methods and oversized bodies: never an HTML page,
never a stack trace.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from jsonschema import Draft202012Validator
from tornado.web import HTTPError, StaticFileHandler, stream_request_body

from roomd import protocol
from roomd.domain import roomcodes
from roomd.domain.errors import StoreUnavailable
from roomd.domain.names import clean_display_name
from roomd.domain.store import Membership, RoomOptions
from roomd.domain.tokens import bearer_token
from roomd.protocol import ErrorCode
from roomd.transport.client_address import client_address
from roomd.transport.context import Services
from roomd.transport.origins import origin_allowed
from roomd.transport.responses import ApiError, JsonErrors

__all__ = ["ApiError", "JsonHandler", "StaticFiles"]

log = logging.getLogger("roomd.http")


@stream_request_body
class JsonHandler(JsonErrors):
    """Base of every route: bounded JSON bodies, CORS, and uniform errors."""

    path_error = ErrorCode.ROOM_NOT_FOUND  # the only path arguments are room codes

    _chunks: list[bytes]
    _size: int

    @property
    def services(self) -> Services:
        return self.application.settings["services"]  # type: ignore[no-any-return]

    def initialize(self) -> None:
        self._chunks = []
        self._size = 0
        self._counted = False

    def _request_started(self) -> None:
        if not self._counted:
            self._counted = True
            self.services.inflight += 1

    def _request_ended(self) -> None:
        if self._counted:
            self._counted = False
            self.services.inflight -= 1

    def on_finish(self) -> None:
        self._request_ended()

    def on_connection_close(self) -> None:
        self._request_ended()
        super().on_connection_close()

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        origin = self.request.headers.get("Origin")
        allowed = self.services.settings.cors_origins
        if origin and origin_allowed(origin, allowed):
            self.set_header("Access-Control-Allow-Origin", "*" if "*" in allowed else origin)
            self.set_header("Vary", "Origin")

    rate_limited = True  # /health opts out

    async def prepare(self) -> None:
        self._request_started()
        settings = self.services.settings
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > settings.http_max_body_bytes:
            raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large", 413)
        if self.rate_limited and self.request.method != "OPTIONS":
            verdict = await self.services.throttle.hit(client_address(self.request, settings.trust_proxy))
            if not verdict.allowed:
                message = f"At most {settings.throttle_limit} requests per {settings.throttle_ttl_ms} ms; retry later"
                retry_after = max(1, math.ceil(verdict.retry_after_ms / 1000))
                self.services.metrics.rate_limited.labels("http").inc()
                raise ApiError(ErrorCode.RATE_LIMITED, message, retry_after=retry_after)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.services.settings.http_max_body_bytes:
            self.send_error(413, exc_info=(ApiError, ApiError(ErrorCode.PAYLOAD_TOO_LARGE), None))
            return
        self._chunks.append(chunk)

    def options(self, *args: str) -> None:
        """CORS preflight."""
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    def json_body(self, validator: Draft202012Validator) -> dict[str, Any]:
        raw = b"".join(self._chunks)
        try:
            body = protocol.parse_json(raw) if raw.strip() else None
        except protocol.InvalidJson as exc:
            raise ApiError(ErrorCode.INVALID_BODY, f"The request body {exc}") from None
        if body is None:
            raise ApiError(ErrorCode.INVALID_BODY, "A JSON body is required")
        if not isinstance(body, dict):
            raise ApiError(ErrorCode.INVALID_BODY, "The request body must be a JSON object")
        problem = protocol.first_error(validator, body)
        if problem is not None:
            raise ApiError(ErrorCode.INVALID_BODY, problem)
        return body

    def room_code(self, raw: str) -> str:
        settings = self.services.settings
        code = roomcodes.normalize(raw, settings.room_code_alphabet, settings.room_code_length)
        if code is None:
            raise ApiError(ErrorCode.ROOM_NOT_FOUND)
        return code

    def display_name(self, raw: str) -> str:
        s = self.services.settings
        return clean_display_name(raw, s.display_name_min_length, s.display_name_max_length)

    def send_json(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, separators=(",", ":")))

    def send_membership(self, membership: Membership) -> None:
        token = self.services.tokens.issue(membership.room_code, membership.user_id)
        self.send_json({"roomCode": membership.room_code, "token": token, "userId": membership.user_id}, 201)

    def send_admission(self, admission: Membership) -> None:
        """A viewer's 201: its token (role viewer) and its audience id."""
        token = self.services.tokens.issue(admission.room_code, admission.user_id, "viewer")
        self.send_json({"roomCode": admission.room_code, "token": token, "audienceId": admission.user_id}, 201)

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, StoreUnavailable):
            self.services.metrics.redis_errors.inc()
        super().log_exception(typ, value, tb)


class CreateRoomHandler(JsonHandler):
    _schema = protocol.validator("http/create-room.request.json")

    async def post(self) -> None:
        body = self.json_body(self._schema)
        name = self.display_name(body["displayName"])
        limit = self.services.settings.room_max_users
        max_users = body.get("maxUsers", limit)
        if max_users > limit:
            raise ApiError(ErrorCode.INVALID_BODY, f"maxUsers: must be between 1 and {limit}")
        options = RoomOptions(
            player_messages=body.get("playerMessages", "host"),
            host_migration=body.get("hostMigration", "leave"),
            audience=body.get("audience", False),
        )
        self.send_membership(await self.services.store.create_room(name, max_users, options))


class RoomHandler(JsonHandler):
    async def get(self, raw_code: str) -> None:
        self.send_json(await self.services.store.get_room(self.room_code(raw_code)))


class JoinRoomHandler(JsonHandler):
    _schema = protocol.validator("http/join-room.request.json")

    async def post(self, raw_code: str) -> None:
        code = self.room_code(raw_code)
        body = self.json_body(self._schema)
        name = self.display_name(body["displayName"])
        self.send_membership(await self.services.store.join_room(code, name))


class AudienceHandler(JsonHandler):
    """``POST /rooms/:code/audience {displayName?}``: admit a viewer (rooms created with an audience).

    An empty body is accepted: a viewer need not give a name. Throttled like every route.
    """

    _schema = protocol.validator("http/audience.request.json")
    DEFAULT_NAME = "Viewer"

    async def post(self, raw_code: str) -> None:
        code = self.room_code(raw_code)
        body = self.json_body(self._schema) if b"".join(self._chunks).strip() else {}
        name = self.display_name(body.get("displayName", self.DEFAULT_NAME))
        limit = self.services.settings.audience_max
        self.send_admission(await self.services.store.join_audience(code, name, limit))


class RejoinRoomHandler(JsonHandler):
    async def post(self, raw_code: str) -> None:
        token = bearer_token(self.request.headers.get("Authorization"))
        claims = self.services.tokens.verify(token)
        code = raw_code.strip().upper()
        if code != claims.room_code:
            raise ApiError(ErrorCode.MEMBER_NOT_FOUND, "The token belongs to another room")
        if claims.viewer:  # a viewer's token: still admitted to the audience (a kick ends it)
            await self.services.store.check_viewer(code, claims.user_id)
            self.send_admission(Membership(code, claims.user_id))
            return
        await self.services.store.check_member(code, claims.user_id)
        self.send_membership(Membership(code, claims.user_id))


class HealthHandler(JsonHandler):
    rate_limited = False

    async def get(self) -> None:
        if self.services.draining:
            self.send_json({"status": "draining", "checks": {"redis": "skipped"}}, 503)
            return
        try:
            await self.services.store.ping()
        except StoreUnavailable:
            self.send_json({"status": "error", "checks": {"redis": "unavailable"}}, 503)
            return
        self.send_json({"status": "ok", "checks": {"redis": "ok"}})


class NotFoundHandler(JsonHandler):
    """Every unknown route, whatever the method."""

    async def prepare(self) -> None:
        raise ApiError(ErrorCode.NOT_FOUND, f"No route for {self.request.path}")


class StaticFiles(JsonErrors, StaticFileHandler):
    """The web lobby and the JavaScript client: Tornado's static files with the documented JSON errors.

    A missing file, a path outside the directory (Tornado says 403: we say 404,
    revealing nothing) and a wrong method answer like any other route.
    """

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        try:
            return super().validate_absolute_path(root, absolute_path)
        except HTTPError as exc:
            if exc.status_code in (403, 404):
                raise ApiError(ErrorCode.NOT_FOUND, "No such file", 404) from None
            raise
