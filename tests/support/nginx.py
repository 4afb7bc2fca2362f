"""A real nginx for deployment tests: the shipped configs run in front of real roomd processes.

The config under test is a ``conf.d``-style fragment (``server``/``upstream`` blocks);
it is wrapped in a minimal ``nginx.conf`` writing only under a temporary directory.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def nginx_binary() -> str:
    """The nginx binary, or skip the test (.ci/run installs it)."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        pytest.skip("nginx is not installed")
    return binary


def wrapped(conf: str, work: Path) -> Path:
    """``conf`` inside a minimal nginx.conf whose pid, logs and temp files live under ``work``."""
    for log in ("/var/log/nginx/access.log", "/var/log/nginx/roomd.access.log"):
        conf = conf.replace(log, str(work / "access.log"))
    temp = " ".join(f"{kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    path = work / "nginx.conf"
    path.write_text(
        f"pid {work / 'nginx.pid'};\nerror_log {work / 'error.log'};\nevents {{}}\nhttp {{\n{temp}\n{conf}\n}}\n"
    )
    return path


def check(conf: str) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``conf`` (wrapped)."""
    binary = nginx_binary()
    work = Path(tempfile.mkdtemp(prefix="roomd-nginx-"))
    try:
        return subprocess.run([binary, "-t", "-p", str(work), "-c", str(wrapped(conf, work))],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def running(conf: str, port: int) -> Iterator[int]:
    """nginx serving ``conf`` (which listens on 127.0.0.1:``port``) until the block ends; yields the port."""
    binary = nginx_binary()
    work = Path(tempfile.mkdtemp(prefix="roomd-nginx-"))
    path = wrapped(conf, work)
    checked = subprocess.run([binary, "-t", "-p", str(work), "-c", str(path)], capture_output=True, text=True,
                             timeout=30)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([binary, "-p", str(work), "-c", str(path), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


def status(port: int, path: str, source: str = "127.0.0.1") -> int:
    """Status of GET ``path`` through nginx on ``port``, sent from the local address ``source``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: rooms.example.com\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split()[1])
