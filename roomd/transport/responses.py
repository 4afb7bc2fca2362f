"""Error answers in the documented JSON shape, for every handler roomd routes to.

``{"statusCode", "code", "message"}`` with an ``X-Request-Id``, whatever the
handler: the JSON API, the static files, ``/metrics`` and ``/ws`` before its
upgrade. Tornado's defaults (an HTML error page, a plain-text refusal, a log
line with the full URI) are replaced here once, so no route can fall back to
them. Logging never includes the query string: it may carry ``?token=``.
"""

from __future__ import annotations

import json
import logging
from asyncio import Future
from typing import Any

from tornado.web import HTTPError, RequestHandler

from roomd.domain.errors import DomainError, StoreUnavailable
from roomd.protocol import ErrorCode
from roomd.transport.request_ids import request_id

log = logging.getLogger("roomd.http")

STATUS_CODES = {
    400: ErrorCode.INVALID_BODY,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.NOT_FOUND,  # Tornado's static files say 403 for paths outside their root: not found to us
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    426: ErrorCode.UPGRADE_REQUIRED,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.REDIS_UNAVAILABLE,
}
_METHODS = ("GET", "HEAD", "POST", "OPTIONS")


class ApiError(HTTPError):
    """An HTTP error with a protocol error code."""

    def __init__(
        self, code: ErrorCode, message: str | None = None, status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(status or code.http_status)
        self.error_code = code
        self.error_message = message or code.message
        self.retry_after = retry_after


class JsonErrors(RequestHandler):
    """Mixed into every handler class (before Tornado's): JSON errors, request ids, logs without query strings."""

    path_error = ErrorCode.NOT_FOUND  # what an undecodable path argument means on this route
    _json_error_sent = False

    def set_default_headers(self) -> None:
        self.set_header("X-Request-Id", request_id(self.request))

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Path arguments (``name`` None) that are not UTF-8 name nothing that exists: 404, not "bad body"."""
        try:
            return super().decode_argument(value, name)
        except HTTPError:
            if name is None:
                raise ApiError(self.path_error, "The path is not valid UTF-8", 404) from None
            raise ApiError(ErrorCode.INVALID_BODY, f"The query parameter {name!r} is not valid UTF-8", 400) from None

    def _request_summary(self) -> str:
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"  # never the query string

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        """Tornado's default logs ``%r`` of the request (its URI, with ``?token=``): never that."""
        if value is None or isinstance(value, HTTPError | DomainError):
            return  # answered with its documented error; nothing went wrong on our side
        rid = request_id(self.request)
        if isinstance(value, StoreUnavailable):
            log.warning("%s: Redis unavailable", self._request_summary(), extra={"requestId": rid})
            return
        log.error("%s failed", self._request_summary(), exc_info=(type(value), value, tb), extra={"requestId": rid})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            code, message, status = exc.error_code, exc.error_message, exc.status_code
            if exc.retry_after is not None:
                self.set_header("Retry-After", str(exc.retry_after))
        elif isinstance(exc, DomainError):
            code, message, status = exc.code, exc.message, exc.code.http_status
        elif isinstance(exc, StoreUnavailable):
            code, message, status = ErrorCode.REDIS_UNAVAILABLE, ErrorCode.REDIS_UNAVAILABLE.message, 503
        elif status_code >= 500:
            code, message, status = ErrorCode.INTERNAL_ERROR, ErrorCode.INTERNAL_ERROR.message, 500
        elif status_code in STATUS_CODES:
            code = STATUS_CODES[status_code]
            status = 404 if status_code == 403 else status_code
            message = "The request is malformed." if code is ErrorCode.INVALID_BODY else code.message
        else:
            code, message, status = ErrorCode.INVALID_BODY, "The request is malformed.", status_code
        self.send_json_error(status, code, message)

    def send_json_error(self, status: int, code: ErrorCode, message: str) -> Future[None]:
        """Answer ``{"statusCode", "code", "message"}`` and finish the request."""
        if status == 405:
            self.set_header("Allow", ", ".join(m for m in _METHODS if self._implements(m)))
        if status == 426:
            self.set_header("Upgrade", "websocket")
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self._json_error_sent = True
        return self.finish(json.dumps({"statusCode": status, "code": code.value, "message": message}))

    def _implements(self, method: str) -> bool:
        return getattr(type(self), method.lower()) is not getattr(RequestHandler, method.lower())
