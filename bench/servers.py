"""Private processes for a benchmark run: a redis-server and roomd instance(s), loopback only."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
FD_LIMIT = 65536


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(FD_LIMIT, hard) if hard != resource.RLIM_INFINITY else FD_LIMIT
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="roomd-bench-redis-")
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench: redis-server is required")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--maxclients", "20000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(b"FLUSHDB\r\n")
            s.recv(64)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Roomd:
    """``python -m roomd`` with settings that take the abuse limits out of the way of a load test."""

    def __init__(self, redis_url: str, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="roomd-bench-", suffix=".log")[1])
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_", "THROTTLE_", "WS_"))},
            "ROOMD_ENV": "production", "JWT_SECRET": SECRET, "REDIS_URL": redis_url, "HOST": "127.0.0.1",
            "PORT": str(self.port), "WORKERS": str(workers), "LOG_LEVEL": "WARNING",
            "THROTTLE_LIMIT": "1000000000", "WS_RATE_LIMIT": "1000000", "WS_RATE_BURST": "1000000",
            "WS_CONNECT_LIMIT": "1000000000", "WS_CONNECT_USER_LIMIT": "1000000000",
            "ROOM_MAX_USERS": "10", "MAX_CONNECTIONS_PER_CLIENT": "0", **env,
        }  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "roomd", "--env-file", "/nonexistent"], cwd=ROOT, env=environ,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=raise_fd_limit,
            )  # fmt: skip
        self._wait_healthy()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The serving processes (the workers, when there is a supervisor)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = [int(p) for p in children.read_text().split()] if children.exists() else []
        return found or [self.process.pid]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: roomd exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench: roomd did not become healthy")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.unlink(missing_ok=True)


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("bench: redis-server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
