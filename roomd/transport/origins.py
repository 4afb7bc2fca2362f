"""Which browser origins may call the API and open WebSockets (CORS_ORIGINS)."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_allowed(origin: str | None, allowed: tuple[str, ...], host: str | None = None) -> bool:
    """True for a listed origin, any origin under ``*``, or the server's own origin.

    Clients that send no Origin (game engines, CLIs) are not browsers and are
    not subject to cross-site checks.
    """
    if not origin:
        return True
    origin = origin.rstrip("/")
    if "*" in allowed or origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()
