"""Accepting TCP connections without falling over: caps, EMFILE back-off, header timeout.

Any client can open TCP connections without a token, so the listener is the first
line of defence for the process's file descriptors (issue 10, item 1.1):

- **EMFILE/ENFILE back-off.** Tornado's ``netutil.add_accept_handler`` lets an
  EMFILE from ``accept()`` escape its IOLoop handler while the listening socket
  stays readable, so the loop calls it again at once: a core at 100 %, a
  traceback per poll, and nothing else served. Here ``accept()`` failing for lack
  of resources pauses that listening socket (0.1 s, doubling to 1 s while it keeps
  failing) and is logged once per interval; open connections keep being served.
- **A total cap** (``MAX_CONNECTIONS``, by default the open-file limit minus
  :data:`RESERVED_DESCRIPTORS` for Redis, logs and static files), so accept meets
  EMFILE only when something else eats descriptors.
- **A per-address cap** on unauthenticated connections
  (``MAX_CONNECTIONS_PER_CLIENT``): plain HTTP, and WebSocket upgrades until their
  token is verified (``transport/websocket.py`` calls ``mark_authenticated`` on the
  socket). A member's WebSocket does not count, so a household or a classroom
  behind one address can play; connections from ``TRUST_PROXY`` addresses are
  exempt (the proxy carries many clients; limit them there).
- Connections over a cap are closed at once (no descriptor held, no header read),
  counted in ``roomd_connections_refused_total`` and logged once per interval.
- **Header timeout** (``HTTP_HEADER_TIMEOUT_MS``): Tornado's
  ``idle_connection_timeout`` is its header timeout, the time allowed from the
  start of waiting for a request (a new connection, or a keep-alive connection
  after its previous response) to the end of its header.

Only public Tornado API is used: :class:`GuardedHTTPServer` replaces
``TCPServer.add_sockets``/``stop`` with its own accept loop on the IOLoop's
``add_handler`` and hands each stream to the public ``HTTPServer.handle_stream``.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import resource
import socket
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.web import Application

from roomd.config import Settings
from roomd.transport.metrics import Metrics

log = logging.getLogger("roomd.listener")

RESERVED_DESCRIPTORS = 100  # Redis pool (64) + pub/sub, listening sockets, stdio, log files, static files
MIN_CONNECTIONS = 16  # whatever the open-file limit, serve at least this many
MAX_PER_CLIENT = 256  # the largest automatic per-address cap
ACCEPT_BATCH = 128  # accepts per readiness event, like Tornado's, so one listener cannot starve the loop
BACKOFF_MIN, BACKOFF_MAX = 0.1, 1.0  # seconds a listening socket rests after accept() ran out of resources
LOG_INTERVAL = 10.0  # seconds: at most one line per kind of trouble per interval
# accept() failed for lack of descriptors or memory: retrying at once would fail again.
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# Linux reports network errors of the pending connection through accept(): skip that one, go on.
_PEER_GONE = {
    errno.ECONNABORTED, errno.EPROTO, errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET,
    errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETDOWN, errno.ENETUNREACH, errno.ETIMEDOUT,
}  # fmt: skip


def default_max_connections(nofile: int) -> int:
    """``MAX_CONNECTIONS=auto``: the open-file limit minus what roomd itself needs."""
    return max(MIN_CONNECTIONS, nofile - RESERVED_DESCRIPTORS)


def default_max_per_client(max_connections: int) -> int:
    """``MAX_CONNECTIONS_PER_CLIENT=auto``: a quarter of the process's connections, at most 256.

    One address never holds most of the slots with connections that proved
    nothing, yet a school or an event behind one NAT address can load the
    lobby at once (a browser opens up to 6 connections per page).
    """
    return max(1, min(MAX_PER_CLIENT, max_connections // 4))


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one and return it (one descriptor per client).

    The soft limit (often 1024) is a guard for programs that use ``select()``;
    roomd uses epoll, so, like Go's runtime and nginx's ``worker_rlimit_nofile``,
    it takes what the hard limit (``LimitNOFILE=`` in systemd) allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.debug("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def client_key(address: Any) -> str:
    """The client an accepted connection counts against: its IPv4 address, or its IPv6 /64."""
    host = address[0] if isinstance(address, tuple) and address else ""
    if ":" not in host:
        return host
    return _ipv6_client(host)


@lru_cache(maxsize=4096)
def _ipv6_client(host: str) -> str:
    try:
        ip = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))  # one host usually owns a whole /64


_Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


@lru_cache(maxsize=4096)
def _trusted(client: str, trusted: _Networks) -> bool:
    """Whether ``client`` (an address, or an IPv6 /64) lies in a TRUST_PROXY network."""
    if not trusted:
        return False
    try:
        ip = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return False
    return any(ip.version == net.version and ip.subnet_of(net) for net in trusted)  # type: ignore[arg-type]


class _Summary:
    """Log the first occurrence now, then at most one summary line per LOG_INTERVAL while it goes on."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.pending = 0
        self.detail = ""
        self.timer: object | None = None

    def hit(self, detail: str) -> None:
        if self.timer is None:
            log.warning("%s: %s (further ones are summarised every %d s)", self.what, detail, LOG_INTERVAL)
            self.timer = IOLoop.current().call_later(LOG_INTERVAL, self._flush)
            return
        self.pending += 1
        self.detail = detail

    def _flush(self) -> None:
        if not self.pending:
            self.timer = None
            return
        log.warning("%s: %d more in the last %d s; latest: %s", self.what, self.pending, LOG_INTERVAL, self.detail)
        self.pending = 0
        self.timer = IOLoop.current().call_later(LOG_INTERVAL, self._flush)


class _Connection(socket.socket):
    """An accepted socket that gives its place back to the listener when it closes (exactly once).

    ``IOStream.close_fd`` closes the socket whatever ends the connection (the
    peer, a header timeout, a WebSocket close, the drain), so counting here
    cannot miss a path. The stream stays a plain ``IOStream``.
    """

    __slots__ = ("_client", "_owner")

    _owner: GuardedHTTPServer | None
    _client: str | None  # the address it counts against while unauthenticated; None: not counted

    def mark_authenticated(self) -> None:
        """A verified WebSocket: it no longer counts against its address's unauthenticated cap."""
        owner, client = self._owner, self._client
        self._client = None
        if owner is not None and client is not None:
            owner._release_client(client)

    def close(self) -> None:
        owner, client = self._owner, self._client
        self._owner = self._client = None
        if owner is not None:
            owner._released(client)
        super().close()


class GuardedHTTPServer(HTTPServer):
    """Tornado's HTTPServer with roomd's own accept loop (see the module docstring)."""

    def configure_limits(
        self, *, max_connections: int, max_per_client: int, nofile: int, trusted: Iterable[str], metrics: Metrics
    ) -> None:
        """Set the limits; required before ``add_sockets``."""
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.nofile = nofile
        self.trusted: _Networks = tuple(ipaddress.ip_network(n, strict=False) for n in trusted)
        self.metrics = metrics
        self.open_connections = 0
        self._per_client: dict[str, int] = {}
        self._listening: dict[int, socket.socket] = {}
        self._paused: dict[int, object] = {}  # fd -> the IOLoop timeout that resumes it
        self._backoff = BACKOFF_MIN
        self._over_total = _Summary("refusing connections over MAX_CONNECTIONS")
        self._over_client = _Summary("refusing connections over MAX_CONNECTIONS_PER_CLIENT")
        self._accept_failed = _Summary("accept() failed")
        metrics.open_connections.set_function(lambda: self.open_connections)
        self._refused_total = metrics.connections_refused.labels("total")
        self._refused_client = metrics.connections_refused.labels("per_client")
        self._accept_errors = metrics.accept_errors

    # -- listening ----------------------------------------------------------------

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        if self.ssl_options is not None:
            raise ValueError("GuardedHTTPServer serves plain HTTP only (TLS ends at the proxy)")
        if not hasattr(self, "_listening"):
            raise RuntimeError("configure_limits() first")
        for sock in sockets:
            self._listening[sock.fileno()] = sock
            self._watch(sock)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets; open connections go on (see drain)."""
        io_loop = IOLoop.current()
        for fd, sock in list(getattr(self, "_listening", {}).items()):
            timer = self._paused.pop(fd, None)
            if timer is not None:
                io_loop.remove_timeout(timer)
            else:
                io_loop.remove_handler(sock)
            sock.close()
        if hasattr(self, "_listening"):
            self._listening.clear()
        super().stop()  # nothing of Tornado's own to stop: add_sockets never registered any

    def _watch(self, sock: socket.socket) -> None:
        IOLoop.current().add_handler(sock, lambda _fd, _events: self._accept(sock), IOLoop.READ)

    def _resume(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._paused.pop(fd, None) is not None and fd in self._listening:
            self._watch(sock)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        fd = sock.fileno()
        delay = self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        io_loop = IOLoop.current()
        io_loop.remove_handler(sock)
        self._paused[fd] = io_loop.call_later(delay, self._resume, sock)
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self._accept_errors.labels(name).inc()
        self._accept_failed.hit(
            f"{name} ({exc.strerror}) with {self.open_connections} connection(s) open and an open-file limit of "
            f"{self.nofile}; not accepting for {delay:g} s, open connections are still served"
        )

    # -- accepting ----------------------------------------------------------------

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if sock.fileno() not in self._listening:
                return  # stopped meanwhile
            try:
                conn, address = sock.accept()
            except BlockingIOError:
                return  # every pending connection taken
            except OSError as exc:
                if exc.errno in _PEER_GONE:
                    continue
                self._pause(sock, exc)  # EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected
                return
            self._backoff = BACKOFF_MIN
            self._admit(conn, address)

    def _admit(self, conn: socket.socket, address: Any) -> None:
        client: str | None = client_key(address)
        if client and (not self.max_per_client or _trusted(client, self.trusted)):
            client = None  # not counted against its address
        if self.open_connections >= self.max_connections:
            conn.close()
            self._refused_total.inc()
            self._over_total.hit(f"{self.max_connections} open")
            return
        if client is not None and self._per_client.get(client, 0) >= self.max_per_client:
            conn.close()
            self._refused_client.inc()
            self._over_client.hit(f"{client} already has {self.max_per_client} unauthenticated connections open")
            return
        wrapped = _Connection(conn.family, conn.type, conn.proto, fileno=conn.detach())
        wrapped._owner, wrapped._client = self, client
        self.open_connections += 1
        if client is not None:
            self._per_client[client] = self._per_client.get(client, 0) + 1
        try:
            stream = IOStream(wrapped, max_buffer_size=self.max_buffer_size, read_chunk_size=self.read_chunk_size)
            self.handle_stream(stream, address)
        except Exception:
            wrapped.close()
            log.exception("could not start serving a connection")

    def _released(self, client: str | None) -> None:
        self.open_connections -= 1
        if client is not None:
            self._release_client(client)

    def _release_client(self, client: str) -> None:
        left = self._per_client.get(client, 0) - 1
        if left > 0:
            self._per_client[client] = left
        else:
            self._per_client.pop(client, None)


def make_http_server(app: Application, settings: Settings, metrics: Metrics) -> GuardedHTTPServer:
    """The HTTP server of one roomd process, with the limits of ``settings``; logs them once."""
    nofile = raise_open_file_limit()
    allowed = default_max_connections(nofile)
    max_connections = settings.max_connections or allowed
    if max_connections > allowed:
        log.warning(
            "MAX_CONNECTIONS=%d is above what the open-file limit allows (%d - %d reserved): accept() will "
            "pause on EMFILE instead; raise LimitNOFILE (ulimit -n)", max_connections, nofile, RESERVED_DESCRIPTORS,
        )  # fmt: skip
    server = GuardedHTTPServer(
        app,
        max_body_size=max(settings.http_max_body_bytes, 1 << 20),
        max_header_size=16 * 1024,
        idle_connection_timeout=settings.http_header_timeout_ms / 1000,  # Tornado's header timeout
        body_timeout=30,
    )
    per_client = settings.max_connections_per_client
    if per_client is None:
        per_client = default_max_per_client(max_connections)
    server.configure_limits(
        max_connections=max_connections,
        max_per_client=per_client,
        nofile=nofile,
        trusted=settings.trust_proxy,
        metrics=metrics,
    )
    log.info(
        "at most %d connections (open-file limit %d), %s unauthenticated per client address, headers within %d ms",
        max_connections, nofile, per_client or "any number of",
        settings.http_header_timeout_ms,
    )  # fmt: skip
    return server
