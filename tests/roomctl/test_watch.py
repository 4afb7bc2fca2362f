"""``stats --watch`` and ``events --all``: the console script through pipes and on a terminal, and CliRunner."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import subprocess
import time

from roomd.domain.keys import channel
from roomd.domain.store import RoomStore
from tests.roomctl.conftest import Roomctl, as_json
from tests.roomctl.test_live import ENV
from tests.roomctl.test_pipes import command
from tests.support.processes import RedisServer


async def read_line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), 20)).decode()


async def test_watch_json_lines_until_ctrl_c(redis_server: RedisServer, store: RoomStore) -> None:
    await store.create_room("Ana")
    proc = await asyncio.create_subprocess_exec(
        *command(redis_server, "stats", "--watch", "0.1", "--json"), env=ENV, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    reports = [json.loads(await read_line(proc.stdout)) for _ in range(2)]
    await store.create_room("Bob")
    while reports[-1]["rooms"] != 2:  # refreshed: the new room shows up
        reports.append(json.loads(await read_line(proc.stdout)))
    assert all(
        r["ts"].endswith("Z") and set(r) >= {"rooms", "members", "connectedMembers", "instances"} for r in reports
    )
    assert reports[0]["ts"] < reports[-1]["ts"]
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0 and b"Traceback" not in err


async def test_watch_piped_blocks_and_a_reader_leaving(redis_server: RedisServer, store: RoomStore) -> None:
    await store.create_room("Ana")
    read, write = os.pipe()
    proc = subprocess.Popen(command(redis_server, "stats", "--watch", "60"), stdin=subprocess.DEVNULL, stdout=write,
                            stderr=subprocess.PIPE, env=ENV)  # fmt: skip
    os.close(write)
    try:
        with os.fdopen(read, "rb") as reader:
            assert reader.readline() == b"rooms\t1\n"  # the first block, as plain `stats` prints it
        # The reader is gone; the next refresh is a minute away, yet roomctl ends now, as `cat` would.
        assert await asyncio.to_thread(proc.wait, 20) == -signal.SIGPIPE
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        assert proc.stderr.read() == b""
        proc.stderr.close()


def test_watch_on_a_terminal_redraws_and_ctrl_c_exits_0(redis_server: RedisServer) -> None:
    main, side = pty.openpty()
    env = {**ENV, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen(command(redis_server, "stats", "--watch", "0.1"), stdin=side, stdout=side, stderr=side,
                            env=env, start_new_session=True)  # fmt: skip
    os.close(side)
    screen = b""
    try:
        deadline = time.monotonic() + 20
        while screen.count(b"every 0.1s, Ctrl-C to stop") < 3 and time.monotonic() < deadline:
            screen += os.read(main, 65536)  # several refreshes
        assert screen.count(b"every 0.1s, Ctrl-C to stop") >= 3, screen[-500:]
        assert b"\x1b[" in screen and b"rooms" in screen  # rich, in colour, redrawn in place
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


async def test_watch_needs_a_positive_interval(roomctl: Roomctl) -> None:
    result = await roomctl("stats", "--watch", "0")
    assert result.exit_code == 2 and "--watch" in result.stderr


# -- events --all -------------------------------------------------------------------


async def wait_for_pattern(store: RoomStore, task: asyncio.Task) -> None:
    for _ in range(500):
        if await store.client.pubsub_numpat() or task.done():
            return
        await asyncio.sleep(0.02)


async def test_events_all_rooms(roomctl: Roomctl, store: RoomStore) -> None:
    first = await store.create_room("Ana")
    second = await store.create_room("Bob")
    task = asyncio.create_task(roomctl("events", "--all", "--json", "--count", "3"))
    await wait_for_pattern(store, task)
    await store.set_lock(first.room_code, None, "lock")
    await store.close_room(second.room_code, None)  # --all keeps going after a room closes
    await store.set_lock(first.room_code, None, "unlock")
    result = await asyncio.wait_for(task, 20)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["room"], e["event"], e["data"]) for e in lines] == [
        (first.room_code, "room:lock_toggled", {"isLocked": True}),
        (second.room_code, "room:closed", {"reason": "ADMIN_CLOSED"}),
        (first.room_code, "room:lock_toggled", {"isLocked": False}),
    ]
    assert result.stderr == "following every room (Ctrl-C to stop)\n"


async def test_events_all_plain_and_tolerant(roomctl: Roomctl, store: RoomStore) -> None:
    task = asyncio.create_task(roomctl("events", "--all", "--count", "2"))
    await wait_for_pattern(store, task)
    frame = '{"event": "room:lock_toggled", "data": {"isLocked": true}}'
    await store.client.publish(channel("KXQD"), f'{{"seq": 3, "incarnation": "a1b2", "later": [1]}}\n{frame}')
    await store.client.publish(channel("KXQD"), "not a bus message")
    await store.client.publish(channel("ABCD"), f"[]\n{frame}")  # a meta of another shape: ignored
    result = await asyncio.wait_for(task, 20)
    assert [line.split("\t")[1:] for line in result.stdout.splitlines()] == [
        ["KXQD", "room:lock_toggled", '{"isLocked": true}'],
        ["ABCD", "room:lock_toggled", '{"isLocked": true}'],
    ]
    assert "skipped a bus message without a readable frame" in result.stderr


async def test_events_needs_a_code_or_all(roomctl: Roomctl) -> None:
    for args in (["events"], ["events", "ABCD", "--all"]):
        result = await roomctl(*args)
        assert result.exit_code == 2 and "give a room CODE or --all" in result.stderr


async def test_stats_json_is_unchanged_without_watch(roomctl: Roomctl) -> None:
    assert "ts" not in as_json(await roomctl("stats", "--json"))
