"""Real processes for tests: a private redis-server on a free port, and roomd servers.

Nothing here touches the machine's shared Redis (6379).
"""

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
from collections.abc import Iterator
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server; ``stop``/``start`` keep its data (for outage tests)."""

    def __init__(self, persist: bool = False) -> None:
        self.persist = persist  # keep data across stop()/start() (an RDB file saved at shutdown)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="roomd-test-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required for the tests"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "3600 1" if self.persist else "",
             "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def pause(self) -> None:
        """Stop answering (SIGSTOP) without losing data."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @classmethod
    def serve(cls) -> Iterator[RedisServer]:
        """A started server for the length of a fixture (``yield from RedisServer.serve()``), then removed."""
        server = cls()
        server.start()
        yield server
        server.cleanup()


class RoomdProcess:
    """``python -m roomd`` as a subprocess, configured by environment variables."""

    def __init__(self, redis_url: str, *, nofile: int | None = None, **env: str) -> None:
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) of the process, like `ulimit -n`
        self.port = int(env["PORT"]) if "PORT" in env else free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="roomd-test-", suffix=".log")[1])
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_", "THROTTLE_"))},
            "ROOMD_ENV": "production",
            "JWT_SECRET": TEST_SECRET,
            "REDIS_URL": redis_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "INFO",
            "THROTTLE_LIMIT": "1000000",
            "WS_CONNECT_LIMIT": "1000000",  # tests open many sockets from 127.0.0.1; test_abuse lowers them
            "WS_CONNECT_USER_LIMIT": "1000000",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, wait: bool = True) -> RoomdProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "roomd", "--env-file", "/nonexistent"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=self._limit_files if self.nofile else None,
            )  # fmt: skip
        if wait:
            self.wait_healthy()
        return self

    def _limit_files(self) -> None:
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def wait_healthy(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"roomd exited with {self.process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.http}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"roomd did not become healthy:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout: float = 15) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code
