"""systemd notifications (``Type=notify``, ``WatchdogSec=``), speaking the datagram protocol directly.

A no-op unless systemd (or a test) set ``NOTIFY_SOCKET``. Telling systemd is never worth
failing for: a missing or dead socket (ENOENT, ECONNREFUSED, ...) is logged once at debug
level and ``notify`` returns False, so a readiness message can never take roomd down.

The watchdog follows ``sd_watchdog_enabled(3)``: enabled when ``WATCHDOG_USEC`` is a
positive number and ``WATCHDOG_PID`` is unset or names this process (so forked workers,
which inherit the variables, stay quiet). The heartbeat loop calls :func:`heartbeat` once
per iteration; a loop that stops iterating stops the pings and systemd restarts roomd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger("roomd.sdnotify")

SEND_TIMEOUT = 0.25  # seconds; a full receive queue (nobody reading) drops the message instead
_warned: set[str] = set()


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to ``$NOTIFY_SOCKET``; False when there is none or it fails."""
    address = (os.environ.get("NOTIFY_SOCKET") or "").strip()
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    elif not address.startswith("/"):
        _debug_once(address, "unsupported NOTIFY_SOCKET address (only unix sockets are)")
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(SEND_TIMEOUT)  # a reader that stopped reading must not stall the event loop
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        _debug_once(address, f"cannot notify systemd: {exc.strerror or exc}")
        return False
    return True


def _debug_once(address: str, message: str) -> None:
    if address not in _warned:
        _warned.add(address)
        log.debug("%s (NOTIFY_SOCKET=%s)", message, address.replace("\0", "@"))


def watchdog_interval() -> float | None:
    """Seconds systemd waits for a ``WATCHDOG=1``, or None when it does not watch this process."""
    raw = os.environ.get("WATCHDOG_USEC", "").strip()
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID", "").strip()
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000


class Watchdog:
    """Pings systemd's watchdog, at most four times per interval (systemd asks for two)."""

    def __init__(self) -> None:
        self.interval = watchdog_interval()
        self._last = float("-inf")

    def ping(self) -> bool:
        """Send ``WATCHDOG=1`` if it is due; True when one was sent."""
        if self.interval is None:
            return False
        now = time.monotonic()
        if now - self._last < self.interval / 4:
            return False
        self._last = now
        return notify("WATCHDOG=1")


_watchdog: Watchdog | None = None
_heartbeat_hook: Callable[[], object] | None = None


def heartbeat() -> None:
    """One healthy iteration of the heartbeat loop: ping the watchdog (or the supervisor)."""
    global _watchdog
    if _heartbeat_hook is not None:
        _heartbeat_hook()
        return
    if _watchdog is None:
        _watchdog = Watchdog()
    _watchdog.ping()


def set_heartbeat_hook(hook: Callable[[], object] | None) -> None:
    """Route :func:`heartbeat` elsewhere: a ``--workers`` worker reports to its supervisor,
    which alone speaks to systemd (``NotifyAccess=main``)."""
    global _heartbeat_hook
    _heartbeat_hook = hook
