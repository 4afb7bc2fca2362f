"""The client's address for rate limiting, honouring X-Forwarded-For from trusted proxies only."""

from __future__ import annotations

import ipaddress
from functools import cache

from tornado.httputil import HTTPServerRequest


@cache
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in trusted)


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(trusted))


def client_address(request: HTTPServerRequest, trusted: tuple[str, ...]) -> str:
    """The socket peer, unless it is a trusted proxy: then the last untrusted X-Forwarded-For hop.

    Walking X-Forwarded-For from the right and stopping at the first address
    no trusted proxy vouches for means a client cannot spoof its way around
    the limit by sending its own X-Forwarded-For.
    """
    peer = request.remote_ip or "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.get_list("X-Forwarded-For")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
