"""``--workers N``: a small supervisor forking N roomd processes that share the port.

Each worker binds its own listening socket with SO_REUSEPORT, so the kernel
spreads connections across them; workers share nothing but Redis, exactly
like roomd processes on different hosts.

The supervisor alone speaks to systemd (``NotifyAccess=main``):

- READY=1 once every worker reported ready (listening, Redis answering), never
  on a timeout: a unit that is not ready is systemd's ``TimeoutStartSec`` to judge.
- A worker that exits is restarted after a back-off that doubles with each
  consecutive failure (``WORKER_RESTART_DELAY_MS``, at most 60 s; reset once a
  worker stayed up a minute). A worker that fails ``WORKER_START_ATTEMPTS`` times
  in a row without becoming ready (it cannot listen, it crashes at start) makes
  the supervisor stop the others and exit non-zero, so systemd sees the failure:
  2 if the workers' own verdict was 2 (cannot start as configured, which
  ``RestartPreventExitStatus=2`` does not restart), else 1.
- WATCHDOG=1 while every worker that has started its heartbeat loop reported a
  heartbeat within the watchdog interval: a worker whose event loop hangs stops
  the pings, and systemd restarts the unit.
- SIGTERM/SIGINT are forwarded (each worker drains); a second signal kills them.

Workers report through one pipe: fixed 7-byte messages (kind, worker index, pid),
written atomically (less than PIPE_BUF). Workers get SIGTERM if the supervisor
dies (PR_SET_PDEATHSIG on Linux), so a ``kill -9`` of it leaves no worker holding
the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from roomd import config, sdnotify
from roomd.devredis import die_with_parent
from roomd.server import ListenError, serve

log = logging.getLogger("roomd.workers")

MAX_RESTART_DELAY = 60.0  # seconds
STABLE_AFTER = 60.0  # seconds up after which a worker's next failure starts the back-off afresh
TICK = 0.1  # seconds between the supervisor's checks
_MESSAGE = struct.Struct("!cHI")  # kind, worker index, worker pid
READY, BEAT = b"R", b"H"


@dataclass
class Slot:
    """One worker position: its current process and its failure history."""

    index: int
    pid: int | None = None
    started: float = 0.0
    ready: bool = False
    last_beat: float | None = None
    failures: int = 0  # consecutive, for the back-off
    unready_failures: int = 0  # consecutive exits before the worker became ready
    restart_at: float | None = None


class Supervisor:
    def __init__(self, settings: config.Settings, redis_url: str | None, count: int) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.slots = [Slot(i) for i in range(count)]
        self.by_pid: dict[int, Slot] = {}
        self.stopping = False
        self.failed = False
        self.exit_code = 0
        self.ready_sent = False
        self.base_delay = settings.worker_restart_delay_ms / 1000
        self.watchdog = sdnotify.Watchdog()
        self._reader, self._writer = os.pipe()
        self._buffer = b""
        self._status: int | None = None  # ready workers last shown in STATUS=
        self.started = time.monotonic()

    # --- the workers ------------------------------------------------------------------

    def spawn(self, slot: Slot) -> None:
        arm = die_with_parent(signal.SIGTERM)
        try:
            pid = os.fork()
        except OSError as exc:  # EAGAIN, ENOMEM: try again later, as if the worker had failed
            log.error("cannot start worker %d: %s", slot.index, exc.strerror or exc)
            slot.failures += 1
            slot.restart_at = time.monotonic() + min(MAX_RESTART_DELAY, self.base_delay * 2 ** (slot.failures - 1))
            return
        if pid == 0:  # worker
            _run_worker(self.settings, self.redis_url, slot.index, self._reader, self._writer, arm)
        slot.pid, slot.started, slot.ready, slot.last_beat, slot.restart_at = pid, time.monotonic(), False, None, None
        self.by_pid[pid] = slot

    def kill_all(self, signum: int) -> None:
        for pid in list(self.by_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def on_signal(self, signum: int, _frame: object) -> None:
        if self.stopping:  # a second signal: no more waiting
            self.kill_all(signal.SIGKILL)
            return
        self.stopping = True
        sdnotify.notify("STOPPING=1")
        self.kill_all(signum)

    def give_up(self, slot: Slot, code: int) -> None:
        log.error(
            "worker %d failed %d times in a row before it was ready; giving up (stopping the other workers)",
            slot.index,
            slot.unready_failures,
        )
        self.exit_code = 2 if code == 2 else 1
        self.stopping = True
        self.kill_all(signal.SIGTERM)

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                self.spawn(slot)
            while self.by_pid or (not self.stopping and any(s.restart_at is not None for s in self.slots)):
                self.read_messages(TICK)
                self.reap()
                now = time.monotonic()
                if not self.stopping:
                    for slot in self.slots:
                        if slot.restart_at is not None and now >= slot.restart_at:
                            self.spawn(slot)
                    self.report(now)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._reader)
            os.close(self._writer)
        if self.exit_code:
            return self.exit_code
        return 1 if self.failed else 0

    def read_messages(self, timeout: float) -> None:
        readable, _, _ = select.select([self._reader], [], [], timeout)
        if not readable:
            return
        self._buffer += os.read(self._reader, 4096)
        now = time.monotonic()
        while len(self._buffer) >= _MESSAGE.size:
            kind, index, pid = _MESSAGE.unpack_from(self._buffer)
            self._buffer = self._buffer[_MESSAGE.size :]
            slot = self.by_pid.get(pid)
            if slot is None or slot.index != index:
                continue  # from a worker that has exited since
            slot.last_beat = now
            if kind == READY and not slot.ready:
                slot.ready = True
                slot.unready_failures = 0
                if self.ready_sent:
                    log.info("worker %d (pid %d) ready again", index, pid)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.by_pid.pop(pid, None)
            if slot is None:
                continue
            slot.pid = None
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                self.failed |= code != 0
                continue
            now = time.monotonic()
            slot.failures = 1 if now - slot.started >= STABLE_AFTER else slot.failures + 1
            if not slot.ready:
                slot.unready_failures += 1
                if slot.unready_failures >= self.settings.worker_start_attempts:
                    self.give_up(slot, code)
                    continue
            delay = min(MAX_RESTART_DELAY, self.base_delay * 2 ** (slot.failures - 1))
            log.error(
                "worker %d (pid %d) exited with %d%s; restarting in %g s",
                slot.index,
                pid,
                code,
                "" if slot.ready else " before it was ready",
                delay,
            )
            slot.ready = False
            slot.restart_at = now + delay

    def report(self, now: float) -> None:
        """READY=1 once all workers are ready; WATCHDOG=1 while none has gone silent."""
        if not self.ready_sent:
            ready = sum(s.ready and s.pid is not None for s in self.slots)
            if ready == len(self.slots):
                self.ready_sent = True
                log.info("%d workers ready", len(self.slots))
                sdnotify.notify("READY=1")
                if self._status is not None:
                    sdnotify.notify("STATUS=serving")
            elif ready != self._status and now - self.started > 1:  # e.g. workers waiting for Redis
                self._status = ready
                sdnotify.notify(f"STATUS={ready} of {len(self.slots)} workers ready")
            return
        interval = self.watchdog.interval
        if interval is None:
            return
        silent = [s.index for s in self.slots if s.pid is not None and s.last_beat is not None
                  and now - s.last_beat > interval]  # fmt: skip
        if not silent:
            self.watchdog.ping()


def run_workers(settings: config.Settings, redis_url: str | None, count: int) -> int:
    return Supervisor(settings, redis_url, count).run()


def _run_worker(
    settings: config.Settings,
    redis_url: str | None,
    index: int,
    reader: int,
    writer: int,
    arm: Callable[[], None] | None,
) -> None:
    """The forked worker: serve until signalled, report to the supervisor, never return."""
    code = 0
    try:
        if arm is not None:
            arm()  # SIGTERM (a drain) when the supervisor dies
        os.close(reader)
        os.set_blocking(writer, False)  # a stalled supervisor must not stall a worker
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):  # the supervisor speaks to systemd
            os.environ.pop(name, None)
        sdnotify.set_heartbeat_hook(lambda: _send(writer, BEAT, index))
        asyncio.run(
            serve(settings, redis_url, reuse_port=True, on_ready=lambda: _send(writer, READY, index),
                  notify_stopping=False)
        )  # fmt: skip
    except ListenError as exc:
        log.error("worker %d: %s", index, exc)
        code = 2
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        log.exception("worker %d failed", index)
        code = 1
    finally:
        os._exit(code)


def _send(fd: int, kind: bytes, index: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, _MESSAGE.pack(kind, index, os.getpid()))
