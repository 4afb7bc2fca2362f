"""How roomd processes start, tell systemd, and end: the development Redis, a busy port,
READY/WATCHDOG/STOPPING notifications and the ``--workers`` supervisor. Real processes only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from roomd.domain.keys import instances_key
from tests.support.clients import http
from tests.support.notify import NotifySocket
from tests.support.processes import ROOT, TEST_SECRET, RedisServer, RoomdProcess, free_port

Spawn = Callable[..., RoomdProcess]


# --- helpers -----------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def dev_redis_pid(state: Path) -> int:
    client = redis.Redis(unix_socket_path=str(state / "redis.sock"), socket_timeout=5)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def wait_for_log(server: RoomdProcess, needle: str, timeout: float = 20, count: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while server.logs().count(needle) < count:
        assert server.process is not None
        if server.process.poll() is not None:
            raise AssertionError(f"roomd exited with {server.process.returncode}:\n{server.logs()}")
        assert time.monotonic() < deadline, f"{needle!r} not logged:\n{server.logs()}"
        time.sleep(0.05)


@contextlib.contextmanager
def silent_websocket(server: RoomdProcess) -> Iterator[socket.socket]:
    """A member's WebSocket whose client reads nothing and never answers a close frame."""
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{server.http}/rooms", data=b'{"displayName":"Ana"}', headers={"Content-Type": "application/json"}
        )
    ) as response:
        token = json.loads(response.read())["token"]  # fmt: skip
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield raw
    finally:
        raw.close()


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="roomd-dev-"))
    yield path
    # Whatever a failing test left behind: never leak a redis-server (only ours: its command
    # line names this directory's socket).
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()  # argv, or the title Redis gives itself
            if b"redis-server" in cmdline and str(path / "redis.sock").encode() in cmdline:
                os.kill(int(proc.name), signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def dev(spawn_roomd: Spawn, state: Path, wait: bool = True, **env: str) -> RoomdProcess:
    """roomd in development mode: no REDIS_URL, so it starts its private Redis under ``state``."""
    return spawn_roomd(wait=wait, ROOMD_ENV="development", REDIS_URL="", STATE_DIR=str(state), **env)


def start_orphan_redis(state: Path) -> subprocess.Popen[bytes]:
    """A redis-server on the state directory's socket, as an older roomd killed with -9 left it."""
    state.mkdir(parents=True, exist_ok=True)
    sock = state / "redis.sock"
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "",
         "--appendonly", "no", "--dir", str(state), "--logfile", str(state / "old-redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            dev_redis_pid(state)
            return process
        except (redis.RedisError, OSError):
            assert time.monotonic() < deadline, "orphan redis-server did not start"
            time.sleep(0.05)


# --- 1.8: the development Redis ends with roomd ---------------------------------------------


def test_dev_redis_dies_when_roomd_is_killed(spawn_roomd: Spawn, state_dir: Path) -> None:
    server = dev(spawn_roomd, state_dir)
    child = dev_redis_pid(state_dir)
    server.process.kill()  # SIGKILL: no finally, no atexit
    server.process.wait(10)
    wait_gone(child)


def test_dev_redis_dies_when_roomd_exits_on_a_second_signal(spawn_roomd: Spawn, state_dir: Path) -> None:
    server = dev(spawn_roomd, state_dir)
    child = dev_redis_pid(state_dir)
    with silent_websocket(server) as _:  # never answers the close: the drain waits for it
        server.signal(signal.SIGINT)
        wait_for_log(server, "draining")
        server.signal(signal.SIGINT)  # Ctrl-C again while draining: os._exit(1), no clean-up code runs
        assert server.process.wait(20) == 1
    wait_gone(child)


def test_dev_redis_dies_when_the_process_group_is_killed(state_dir: Path) -> None:
    """``make run`` stopped through its process group; roomd gets SIGKILL with the others."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_", "NOTIFY_"))}
    env = {**clean, "PORT": str(port), "HOST": "127.0.0.1", "STATE_DIR": str(state_dir)}
    process = subprocess.Popen([sys.executable, "-m", "roomd", "--env-file", "/nonexistent"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    try:
        probe = RoomdProcess("unused", PORT=str(port))
        probe.process, probe.log_path = process, Path("/dev/null")
        probe.wait_healthy()
        child = dev_redis_pid(state_dir)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        wait_gone(child)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_stale_dev_redis_of_an_older_run_is_stopped(spawn_roomd: Spawn, state_dir: Path) -> None:
    orphan = start_orphan_redis(state_dir)
    try:
        server = dev(spawn_roomd, state_dir)
        assert orphan.wait(15) is not None  # stopped by the new roomd, not merely ignored
        new = dev_redis_pid(state_dir)
        assert new != orphan.pid and alive(new)
        assert "stale" in server.logs()
        assert server.stop() == 0
        wait_gone(new)
        assert not (state_dir / "redis.sock").exists()
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_leftover_socket_file_does_not_block_a_start(spawn_roomd: Spawn, state_dir: Path) -> None:
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(state_dir / "redis.sock"))
    leftover.close()  # the file stays; nobody listens on it
    (state_dir / "redis.pid").write_text("999999999\n")  # a pid that cannot exist
    server = dev(spawn_roomd, state_dir)
    assert alive(dev_redis_pid(state_dir))
    assert server.stop() == 0


def test_a_second_roomd_on_the_same_state_dir_is_refused(spawn_roomd: Spawn, state_dir: Path) -> None:
    first = dev(spawn_roomd, state_dir)
    child = dev_redis_pid(state_dir)
    second = dev(spawn_roomd, state_dir, wait=False)
    assert second.process.wait(20) == 2
    assert "STATE_DIR" in second.logs() and "Traceback" not in second.logs()
    assert dev_redis_pid(state_dir) == child  # the first one's Redis was left alone
    first.wait_healthy()


# --- 1.7: a busy port ------------------------------------------------------------------------


def test_busy_port_is_a_one_line_error(redis_server: RedisServer) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROOM", "REDIS_", "JWT_", "NOTIFY_"))}
        env = {**clean, "ROOMD_ENV": "production", "JWT_SECRET": TEST_SECRET, "REDIS_URL": redis_server.url,
               "HOST": "127.0.0.1", "PORT": str(port)}  # fmt: skip
        result = subprocess.run([sys.executable, "-m", "roomd", "--env-file", "/nonexistent"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "in use" in line]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0], result.stderr


# --- READY=1, WATCHDOG=1, STOPPING=1 ----------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_ready_is_sent_only_once_redis_answers(spawn_roomd: Spawn, notify: NotifySocket, workers: str) -> None:
    down = RedisServer()  # its port is reserved, nothing listens yet
    try:
        server = spawn_roomd(down.url, wait=False, NOTIFY_SOCKET=notify.path, WORKERS=workers, PORT=str(free_port()),
                             REDIS_CONNECT_TIMEOUT="300", WORKER_RESTART_DELAY_MS="100")  # fmt: skip
        await asyncio.to_thread(wait_for_log, server, "Redis does not answer", count=int(workers))  # each worker
        # An answer after that line: roomd's loop has run since, past where READY=1 used to be sent.
        assert (await http(server.http, "GET", "/health")).status == 503
        early = await asyncio.to_thread(notify.until_marker, notify.mark("redis-down"))
        assert b"READY=1" not in [n.state for n in early]
        down.start()
        ready = await asyncio.to_thread(notify.next_state)
        assert ready.state == b"READY=1" and ready.pid == server.process.pid
        await asyncio.to_thread(server.wait_healthy)  # ready means able to answer
        server.signal(signal.SIGTERM)
        stopping = await asyncio.to_thread(notify.next_state)
        assert stopping.state == b"STOPPING=1" and stopping.pid == server.process.pid
        assert await asyncio.to_thread(server.process.wait, 20) == 0
    finally:
        down.cleanup()


@pytest.mark.parametrize("target", ["missing", "refused"])
def test_a_broken_notify_socket_does_not_stop_roomd(spawn_roomd: Spawn, tmp_path: Path, target: str) -> None:
    path = tmp_path / "notify.sock"
    if target == "refused":  # a socket file nobody reads any more: ECONNREFUSED
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(path))
        dead.close()
    server = spawn_roomd(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="2000000")
    server.wait_healthy()
    assert "Traceback" not in server.logs()
    assert server.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_watchdog_is_pinged_by_the_main_process(spawn_roomd: Spawn, notify: NotifySocket, workers: str) -> None:
    server = spawn_roomd(wait=False, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="2000000", WORKERS=workers,
                         PORT=str(free_port()))  # fmt: skip
    ready = await asyncio.to_thread(notify.next_state)
    assert ready.state == b"READY=1"
    pings = 0
    while pings < 2:
        note = await asyncio.to_thread(notify.recv, 10)
        assert note.pid == server.process.pid, note  # NotifyAccess=main drops anything else
        pings += note.state == b"WATCHDOG=1"
    server.signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.process.wait, 20) == 0


async def test_watchdog_of_another_pid_is_not_ours(spawn_roomd: Spawn, notify: NotifySocket, redis_client) -> None:
    """WATCHDOG_PID names the process systemd watches; anyone else stays quiet."""
    port = free_port()
    server = spawn_roomd(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="200000", WATCHDOG_PID="1", PORT=str(port))
    assert (await asyncio.to_thread(notify.next_state)).state == b"READY=1"
    # Two heartbeats seen in Redis: the first one's iteration (and its ping, if any) is over.
    beats: set[float] = set()
    deadline = time.monotonic() + 20
    while len(beats) < 2:
        for pid, at, score in await heartbeats(redis_client):
            if (pid, at) == (server.process.pid, port):
                beats.add(score)
        assert time.monotonic() < deadline, "no heartbeats"
        await asyncio.sleep(0.1)
    seen = await asyncio.to_thread(notify.until_marker, notify.mark("after-heartbeats"))
    assert b"WATCHDOG=1" not in [n.state for n in seen]
    assert server.stop() == 0


# --- the --workers supervisor ------------------------------------------------------------------


async def test_workers_that_cannot_listen_make_the_supervisor_fail(spawn_roomd: Spawn, notify: NotifySocket) -> None:
    with socket.socket() as holder:  # holds the port without SO_REUSEPORT: every worker's bind fails
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = spawn_roomd(wait=False, NOTIFY_SOCKET=notify.path, WORKERS="2", PORT=str(port),
                             WORKER_RESTART_DELAY_MS="50", WORKER_START_ATTEMPTS="3")  # fmt: skip
        code = await asyncio.to_thread(server.process.wait, 60)
    assert code == 2  # the workers' own verdict (cannot listen), so systemd does not restart-loop
    seen = notify.until_marker(notify.mark("after-exit"), timeout=5)
    assert b"READY=1" not in [n.state for n in seen]
    logs = server.logs()
    assert "Traceback" not in logs
    per_worker = [[line.rsplit("restarting in ", 1)[1] for line in logs.splitlines()
                   if f"worker {index} " in line and "restarting in " in line] for index in (0, 1)]  # fmt: skip
    for delays in per_worker:  # the delay doubles; the third failure (of either) ends it all
        assert delays == ["0.05 s", "0.1 s"][: len(delays)], logs
    assert max(map(len, per_worker)) == 2, logs
    assert "giving up" in logs


async def test_a_crashed_worker_is_restarted(spawn_roomd: Spawn, notify: NotifySocket, redis_client) -> None:
    port = free_port()
    server = spawn_roomd(wait=False, NOTIFY_SOCKET=notify.path, WORKERS="2", PORT=str(port),
                         WORKER_RESTART_DELAY_MS="50")  # fmt: skip
    assert (await asyncio.to_thread(notify.next_state)).state == b"READY=1"
    pids = await worker_pids(redis_client, port, 2)
    victim = pids.pop()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        now = await worker_pids(redis_client, port, 1)
        if now - {victim} - pids:
            break
        assert time.monotonic() < deadline, "the crashed worker was not replaced"
        await asyncio.sleep(0.1)
    assert server.process.poll() is None
    server.signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.process.wait, 20) == 0
    seen = notify.until_marker(notify.mark("end"))
    assert [n.state for n in seen if n.state.startswith(b"READY")] == []  # READY=1 was sent once, before
    assert "restarting in 0.05 s" in server.logs()


async def test_workers_end_with_a_killed_supervisor(spawn_roomd: Spawn, redis_client) -> None:
    port = free_port()
    server = spawn_roomd(WORKERS="2", PORT=str(port))
    pids = await worker_pids(redis_client, port, 2)
    server.process.kill()
    server.process.wait(10)
    for pid in pids:
        await asyncio.to_thread(wait_gone, pid)


async def worker_pids(client, port: int, at_least: int, timeout: float = 20) -> set[int]:
    """Worker pids from the instance heartbeats (``host:pid:port``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {pid for pid, at, _ in await heartbeats(client) if at == port and alive(pid)}
        if len(found) >= at_least:
            return found
        assert time.monotonic() < deadline, f"fewer than {at_least} workers heartbeating"
        await asyncio.sleep(0.1)


async def heartbeats(client) -> list[tuple[int, int, float]]:
    """(pid, port, last heartbeat) of each instance id ``host:pid:port[:nonce]`` in roomd:instances."""
    found = []
    for member, score in await client.zrange(instances_key(), 0, -1, withscores=True):
        match = re.fullmatch(rb".*?:(\d+):(\d+)(?::[0-9a-f]+)?", member)
        if match:
            found.append((int(match[1]), int(match[2]), score))
    return found
