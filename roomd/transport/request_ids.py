"""Request ids: taken from a sane ``X-Request-Id`` (set by a proxy) or generated, echoed back."""

from __future__ import annotations

import re
import secrets

from tornado.httputil import HTTPServerRequest

_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(request: HTTPServerRequest) -> str:
    """The id of ``request``, computed once and cached on it."""
    cached = getattr(request, "_roomd_request_id", None)
    if cached is None:
        given = request.headers.get("X-Request-Id", "")
        cached = given if _SANE.match(given) else secrets.token_hex(8)
        request._roomd_request_id = cached  # type: ignore[attr-defined]
    return cached
