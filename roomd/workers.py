"""``--workers N``: a small supervisor forking N roomd processes that share the port.

Each worker binds its own listening socket with SO_REUSEPORT, so the kernel
spreads connections across them; workers share nothing but Redis, exactly
like roomd processes on different hosts. The supervisor forwards SIGTERM and
SIGINT, restarts a worker that crashes, and tells systemd READY=1 once every
worker listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import time

from roomd import config, sdnotify
from roomd.server import serve

log = logging.getLogger("roomd.workers")

READY_TIMEOUT = 60.0
RESTART_DELAY = 1.0


def run_workers(settings: config.Settings, redis_url: str, count: int) -> int:
    ready_r, ready_w = os.pipe()
    children: dict[int, int] = {}
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # worker
            os.close(ready_r)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = 0
            try:
                asyncio.run(
                    serve(settings, redis_url, reuse_port=True, on_ready=lambda: _announce(ready_w),
                          notify_stopping=False)
                )  # fmt: skip
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = index

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            for pid in children:  # a second signal: no more waiting
                _kill(pid, signal.SIGKILL)
            return
        stopping = True
        sdnotify.notify("STOPPING=1")
        for pid in children:
            _kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(count):
        spawn(index)
    _await_ready(ready_r, count)
    log.info("%d workers ready", count)
    sdnotify.notify("READY=1")

    failed = False
    while children:
        pid, status = os.wait()
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if not stopping and code != 0:
            log.error("worker %d (pid %d) exited with %d; restarting", index, pid, code)
            time.sleep(RESTART_DELAY)
            if not stopping:
                spawn(index)
        elif code != 0:
            failed = True
    os.close(ready_r)
    os.close(ready_w)
    return 1 if failed else 0


def _await_ready(fd: int, count: int) -> None:
    seen = 0
    deadline = time.monotonic() + READY_TIMEOUT
    while seen < count and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.5)
        if readable:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            seen += len(chunk)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _announce(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b".")
