"""roomd/sdnotify.py: the notification protocol, failures that must not raise, the watchdog rules."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from roomd import sdnotify
from tests.support.notify import NotifySocket


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> NotifySocket:
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    yield sock
    sock.close()


def test_notify_sends_one_datagram(listener: NotifySocket) -> None:
    assert sdnotify.notify("READY=1") is True
    note = listener.recv(5)
    assert note.state == b"READY=1" and note.pid == os.getpid()


def test_no_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"roomd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("STOPPING=1") is True
        assert sock.recv(64) == b"STOPPING=1"


@pytest.mark.parametrize("kind", ["missing", "refused", "not-a-socket", "abstract-missing", "unsupported", "empty"])
def test_a_failing_notify_returns_false_and_never_raises(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    if kind == "missing":
        address = str(tmp_path / "nowhere" / "notify.sock")  # ENOENT
    elif kind == "refused":
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(path))
        dead.close()  # the file stays, nobody reads: ECONNREFUSED
        address = str(path)
    elif kind == "not-a-socket":
        path.write_text("")
        address = str(path)
    elif kind == "abstract-missing":
        address = f"@roomd-nobody-listens-{os.getpid()}"
    elif kind == "unsupported":
        address = "vsock:2:1234"
    else:
        address = " "
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.notify("WATCHDOG=1") is False  # and again: no state left broken


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        (None, None, None),
        ("2000000", None, 2.0),
        ("2000000", "self", 2.0),
        ("2000000", "1", None),  # systemd watches another process
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("2000000", "x", None),
    ],
)
def test_watchdog_interval_follows_sd_watchdog_enabled(
    usec: str | None, pid: str | None, expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert sdnotify.watchdog_interval() == expected


def test_watchdog_pings_at_most_four_times_per_interval(
    listener: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")  # 60 s: one ping now, the next after 15 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    pinger = sdnotify.Watchdog()
    assert pinger.ping() is True
    assert pinger.ping() is False
    marker = listener.mark("end")
    assert [n.state for n in listener.until_marker(marker, timeout=5)] == [b"WATCHDOG=1"]


def test_watchdog_disabled_sends_nothing(listener: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.Watchdog().ping() is False
    assert listener.until_marker(listener.mark("end"), timeout=5) == []


def test_a_reader_that_stopped_reading_does_not_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full datagram queue: notify gives up (False) instead of stalling roomd's event loop."""
    with NotifySocket() as listener:
        monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
        for _ in range(100_000):
            if not sdnotify.notify("WATCHDOG=1"):
                break
        else:
            pytest.fail("the queue never filled")
