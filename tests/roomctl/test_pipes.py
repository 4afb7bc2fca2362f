"""Output errors of the installed console script: a closed reader ends it quietly, a full disk is one line.

Real pipes (``| head -1`` in bash, a pipe whose reader is already closed) and the real /dev/full.
A closed reader ends roomctl as it ends ``cat`` or ``yes``: killed by SIGPIPE (bash reports 141),
silently; an output that cannot be written (ENOSPC) is exit 4 with one line; exit 3 is Redis only.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess

import pytest

from roomd.domain.keys import channel
from roomd.domain.store import RoomStore
from tests.roomctl.test_live import ENV, ROOMCTL
from tests.support.processes import RedisServer, free_port

SIGPIPE_STATUS = 128 + signal.SIGPIPE  # what a shell reports for a process SIGPIPE ended (141)


def command(redis: RedisServer | str, *args: str) -> list[str]:
    url = redis if isinstance(redis, str) else redis.url
    return [ROOMCTL, "--env-file", "", "--redis-url", url, *args]


def run_into(stdout: int | str, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run roomctl with stdout on ``stdout`` (a file descriptor or a path opened for writing)."""
    fd = os.open(stdout, os.O_WRONLY) if isinstance(stdout, str) else stdout
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.PIPE, env=ENV,
                              timeout=30, check=False)  # fmt: skip
    finally:
        os.close(fd)


def closed_pipe() -> int:
    """The write end of a pipe whose reader is gone: every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


async def subscribed(store: RoomStore, channel: str) -> None:
    for _ in range(500):
        numsub = await store.client.pubsub_numsub(channel)
        if numsub[0][1]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"nobody subscribed to {channel}")


@pytest.mark.parametrize(
    "args",
    [["rooms", "list"], ["rooms", "list", "--json"], ["stats"], ["rooms", "show", "{code}"],
     ["users", "show", "{code}", "{user}"], ["rooms", "lock", "{code}"]],
    ids=lambda a: " ".join(a),
)  # fmt: skip
async def test_a_closed_reader_ends_every_command_quietly(redis_server, store: RoomStore, args: list[str]) -> None:
    host = await store.create_room("Ana")
    argv = command(redis_server, *(a.format(code=host.room_code, user=host.user_id) for a in args))
    done = await asyncio.to_thread(run_into, closed_pipe(), argv)
    assert done.returncode == -signal.SIGPIPE, done.stderr  # as cat or yes: ended by SIGPIPE
    assert done.stderr == b""


async def test_events_into_head_ends_with_sigpipe(redis_server, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    script = f"{shlex.join(command(redis_server, 'events', host.room_code, '--json'))} | head -n 1; "
    script += 'echo "status=${PIPESTATUS[0]}" >&2'
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        env=ENV,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await subscribed(store, channel(host.room_code))
    await store.set_lock(host.room_code, None, "lock")  # head prints this one and exits
    for _ in range(3):  # later events: a writer that ignores EPIPE would print "Redis unreachable" and exit 3
        await store.set_lock(host.room_code, None, "toggle")
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert out.decode().count("\n") == 1 and '"room:lock_toggled"' in out.decode()
    assert err.decode().splitlines()[-1] == f"status={SIGPIPE_STATUS}"
    assert "error" not in err.decode() and "Traceback" not in err.decode()


async def test_events_notices_its_reader_leave_without_another_event(redis_server, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    read, write = os.pipe()
    proc = subprocess.Popen(command(redis_server, "events", host.room_code), stdin=subprocess.DEVNULL, stdout=write,
                            stderr=subprocess.PIPE, env=ENV)  # fmt: skip
    os.close(write)
    try:
        await subscribed(store, channel(host.room_code))
        os.close(read)  # the reader goes away in a quiet room
        assert await asyncio.to_thread(proc.wait, 20) == -signal.SIGPIPE
        assert proc.stderr is not None and b"error" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.parametrize("args", [["rooms", "list"], ["stats", "--json"], ["rooms", "show", "{code}"]],
                         ids=lambda a: " ".join(a))  # fmt: skip
async def test_a_full_disk_is_one_line_and_exit_4(redis_server, store: RoomStore, args: list[str]) -> None:
    host = await store.create_room("Ana")
    argv = command(redis_server, *(a.format(code=host.room_code) for a in args))
    done = await asyncio.to_thread(run_into, "/dev/full", argv)
    assert done.returncode == 4
    assert done.stderr.decode() == "error: cannot write the output: No space left on device\n"


async def test_events_into_a_full_disk(redis_server, store: RoomStore) -> None:
    host = await store.create_room("Ana")
    full = os.open("/dev/full", os.O_WRONLY)
    proc = await asyncio.create_subprocess_exec(
        *command(redis_server, "events", host.room_code, "--json"), env=ENV, stdin=asyncio.subprocess.DEVNULL,
        stdout=full, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(full)
    await subscribed(store, channel(host.room_code))
    await store.set_lock(host.room_code, None, "lock")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 4 and err.decode().splitlines() == [
        f"following room {host.room_code} (Ctrl-C to stop)",
        "error: cannot write the output: No space left on device",
    ]


def test_an_unwritable_stderr_keeps_the_exit_code() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with open("/dev/full", "wb") as full:
        done = subprocess.run(command(url, "stats"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=full,
                              env=ENV, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 3 and done.stdout == b""


def test_help_into_a_closed_pipe() -> None:
    done = run_into(closed_pipe(), [ROOMCTL, "rooms", "--help"])
    assert done.returncode == -signal.SIGPIPE and done.stderr == b""
