"""Load scenarios. Each runs inside a load-generator process and returns a JSON-able dict.

Latencies are measured in this process (send time to receive time), in seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import websockets

from bench.httpclient import Connection
from bench.servers import cpu_seconds
from bench.wsclient import LeanSocket

USERS_PER_ROOM = 10
TOGGLE = '{"event":"room:toggle_lock"}'


class CpuMeter:
    """roomd's CPU use (percent of one core) over the load window only, not the set-up."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.t0 = time.perf_counter()
        self.c0 = sum(cpu_seconds(p) for p in pids)

    def percent(self) -> float:
        return (sum(cpu_seconds(p) for p in self.pids) - self.c0) / (time.perf_counter() - self.t0) * 100


def _hostport(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _ws(base: str, token: str) -> str:
    return base.replace("http://", "ws://") + "/ws?token=" + token


async def _create_rooms(base: str, count: int, concurrency: int = 50) -> list[dict[str, Any]]:
    host, port = _hostport(base)
    made: list[dict[str, Any]] = []
    numbers = iter(range(count))

    async def worker() -> None:
        conn = Connection(host, port)
        for i in numbers:
            status, body = await conn.request("POST", "/rooms", {"displayName": f"host{i}"})
            assert status == 201, body
            made.append(body)
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return made


async def _fill_rooms(base: str, rooms: list[dict[str, Any]], concurrency: int = 50) -> list[list[dict[str, Any]]]:
    """Members of each room, host first, USERS_PER_ROOM each."""
    host, port = _hostport(base)
    members = {r["roomCode"]: [r] for r in rooms}
    jobs = iter([(r["roomCode"], n) for r in rooms for n in range(USERS_PER_ROOM - 1)])

    async def worker() -> None:
        conn = Connection(host, port)
        for code, n in jobs:
            status, body = await conn.request("POST", f"/rooms/{code}/join", {"displayName": f"p{n}"})
            assert status == 201, body
            members[code].append(body)
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [members[r["roomCode"]] for r in rooms]


async def http_load(base: str, kind: str, clients: int, duration: float, pids: list[int]) -> dict[str, Any]:
    """http-create, http-join, http-get: closed-loop keep-alive clients."""
    host, port = _hostport(base)
    join_slots: deque[str] = deque()
    codes: list[str] = []
    if kind == "join":
        rooms = await _create_rooms(base, int(4000 * duration / (USERS_PER_ROOM - 1)) // 2 + 50)
        join_slots.extend(r["roomCode"] for r in rooms for _ in range(USERS_PER_ROOM - 1))
    elif kind == "get":
        codes = [r["roomCode"] for r in await _create_rooms(base, 100)]
    latencies: list[float] = []  # successful (2xx) requests only: a refusal is not throughput
    errors = 0  # every non-2xx answer (ROOM_FULL included)
    room_full = 0
    counter = itertools.count()

    async def worker() -> None:
        nonlocal errors, room_full
        conn = Connection(host, port)
        while time.perf_counter() < stop:
            if kind == "create":
                method, path, body = "POST", "/rooms", {"displayName": f"c{next(counter)}"}
            elif kind == "join":
                if not join_slots:
                    break
                method, path, body = "POST", f"/rooms/{join_slots.popleft()}/join", {"displayName": "j"}
            else:
                method, path, body = "GET", f"/rooms/{random.choice(codes)}", None
            t0 = time.perf_counter()
            status, answer = await conn.request(method, path, body)
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
                if isinstance(answer, dict) and answer.get("code") == "ROOM_FULL":
                    room_full += 1
        await conn.close()

    meter = CpuMeter(pids)
    start = time.perf_counter()
    stop = start + duration
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "count": len(latencies),
        "elapsed": elapsed,
        "errors": errors,
        "room_full": room_full,
        "sent": len(latencies) + errors,
        "latencies": latencies,
        "cpu": meter.percent(),
    }


async def ws_connect(base: str, clients: int, duration: float, pids: list[int]) -> dict[str, Any]:
    """Join over HTTP, open the WebSocket, wait for room:state: one 'connect' of a player."""
    host, port = _hostport(base)
    rooms = await _create_rooms(base, int(3000 * duration / (USERS_PER_ROOM - 1)) // 2 + 50)
    slots: deque[str] = deque(r["roomCode"] for r in rooms for _ in range(USERS_PER_ROOM - 1))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        conn = Connection(host, port)
        while time.perf_counter() < stop and slots:
            t0 = time.perf_counter()
            status, body = await conn.request("POST", f"/rooms/{slots.popleft()}/join", {"displayName": "w"})
            if status != 201:
                errors += 1
                continue
            try:
                async with websockets.connect(_ws(base, body["token"]), compression=None, ping_interval=None) as ws:
                    first = json.loads(await ws.recv())
            except (OSError, websockets.WebSocketException):  # refused upgrade, closed before room:state
                errors += 1
                continue
            if first["event"] == "room:state":  # only a complete connect counts (and is timed)
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
        await conn.close()

    meter = CpuMeter(pids)
    start = time.perf_counter()
    stop = start + duration
    await asyncio.gather(*(worker() for _ in range(clients)))
    return {
        "count": len(latencies),
        "elapsed": time.perf_counter() - start,
        "errors": errors,
        "latencies": latencies,
        "cpu": meter.percent(),
    }


class Member:
    """One lean socket; ``handler`` is swapped per phase (None drops frames)."""

    def __init__(self) -> None:
        self.handler: Callable[[bytes], None] | None = None
        self.sock: LeanSocket | None = None

    def on_text(self, payload: bytes) -> None:
        if self.handler is not None:
            self.handler(payload)

    def send(self, text: str) -> None:
        assert self.sock is not None
        self.sock.send_text(text)


async def _connect_rooms(bases: list[str], rooms: list[list[dict[str, Any]]]) -> list[list[Member]]:
    """Open every member's socket, members of a room spread round-robin over ``bases``."""
    spread = itertools.count()
    loop = asyncio.get_running_loop()
    population: list[list[Member]] = []
    for room in rooms:
        row = []
        for account in room:
            member = Member()
            state: asyncio.Future[None] = loop.create_future()
            member.handler = lambda p, f=state: None if f.done() or b'"room:state"' not in p else f.set_result(None)
            member.sock = await LeanSocket.connect(_ws(bases[next(spread) % len(bases)], account["token"]),
                                                   member.on_text)  # fmt: skip
            await asyncio.wait_for(state, 10)
            member.handler = None  # user:connected of the others: not measured
            row.append(member)
        population.append(row)
    await asyncio.sleep(0.5)
    return population


async def fanout(bases: list[str], rooms: int, duration: float, rates: list[float | None],
                 pids: list[int]) -> dict[str, Any]:  # fmt: skip
    """Hosts toggle the lock; every member's receive time minus the host's send time.

    One population of rooms and sockets (lean client: see wsclient.py) serves
    every phase in ``rates``: None is the closed loop (next toggle once all
    members got the last one), i.e. saturation; a number is a fixed schedule
    offering that many toggles/s in all.
    """
    made = await _create_rooms(bases[0], rooms)
    accounts = await _fill_rooms(bases[0], made)
    population = await _connect_rooms(bases, accounts)
    phases = [await _fanout_phase(population, duration, rate, pids) for rate in rates]
    for row in population:
        for member in row:
            assert member.sock is not None
            member.sock.abort()
    return {"phases": phases}


async def _fanout_phase(population: list[list[Member]], duration: float, rate: float | None,
                        pids: list[int]) -> dict[str, Any]:  # fmt: skip
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    sent_total = 0
    errors = 0  # toggles refused (error:room, e.g. REDIS_UNAVAILABLE when roomd is overloaded) or deliveries lost
    meter = CpuMeter(pids)
    start = time.perf_counter()
    stop = start + duration

    async def settle(done: asyncio.Future[None], left: list[int]) -> None:
        """Wait for the outstanding deliveries; count them as errors after 30 s instead of failing the run."""
        nonlocal errors
        try:
            await asyncio.wait_for(done, 30)
        except TimeoutError:
            errors += left[0]

    async def closed_loop(row: list[Member]) -> None:
        nonlocal sent_total
        while time.perf_counter() < stop:
            done: asyncio.Future[None] = loop.create_future()
            left = [len(row)]
            t0 = time.perf_counter()

            def on(payload: bytes, t0: float = t0, left: list[int] = left, done: asyncio.Future[None] = done) -> None:
                nonlocal errors
                if b'"room:lock_toggled"' in payload:
                    latencies.append(time.perf_counter() - t0)
                    left[0] -= 1
                    if left[0] == 0:
                        done.set_result(None)
                elif b'"error:room"' in payload and not done.done():  # the toggle was refused: no event comes
                    errors += 1
                    done.set_result(None)

            for member in row:
                member.handler = on
            row[0].send(TOGGLE)
            sent_total += 1
            await settle(done, left)

    send_lags: list[float] = []  # actual send time - scheduled send time (the generator falling behind)
    last_delivery = [start]
    last_send = [start]

    async def paced(row: list[Member], period: float, offset: float) -> None:
        """A toggle every ``period`` s; latency from each toggle's *scheduled* time (see paced_latencies)."""
        nonlocal sent_total, errors
        expected = int((stop - start - offset) / period) + 1
        schedule = [start + offset + k * period for k in range(expected)]
        outcomes: list[bool] = []  # per toggle, in order, as the host's stream shows it: event or error:room
        receipts: list[list[float]] = [[] for _ in row]
        done: asyncio.Future[None] = loop.create_future()
        left = [expected * len(row)]

        def receiver(mine: list[float], is_host: bool) -> Callable[[bytes], None]:
            def on(payload: bytes) -> None:
                nonlocal errors
                if b'"room:lock_toggled"' in payload:
                    now = time.perf_counter()
                    mine.append(now)
                    last_delivery[0] = now
                    if is_host:
                        outcomes.append(True)
                    left[0] -= 1
                elif is_host and b'"error:room"' in payload:  # a refused toggle: its events never come
                    errors += 1
                    outcomes.append(False)
                    left[0] -= len(row)
                else:
                    return
                if left[0] <= 0 and not done.done():
                    done.set_result(None)

            return on

        for i, member in enumerate(row):
            member.handler = receiver(receipts[i], i == 0)
        for at in schedule:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            send_lags.append(time.perf_counter() - at)
            last_send[0] = time.perf_counter()
            row[0].send(TOGGLE)
            sent_total += 1
        await settle(done, left)
        latencies.extend(paced_latencies(schedule, outcomes, receipts))

    if rate is None:
        await asyncio.gather(*(closed_loop(row) for row in population))
        elapsed = time.perf_counter() - start
    else:
        period = len(population) / rate
        await asyncio.gather(*(paced(row, period, i * period / len(population)) for i, row in enumerate(population)))
        # the schedule's length, or longer when roomd fell behind (then the achieved rate shows it)
        elapsed = max(duration, last_delivery[0] - start)
    cpu = meter.percent()
    for row in population:
        for member in row:
            member.handler = None
    return {
        "count": len(latencies),
        "elapsed": elapsed,
        "sent": sent_total,
        "errors": errors,
        "latencies": latencies,
        "send_lags": send_lags,
        "send_span": max(duration, last_send[0] - start),  # paced: how long sending the schedule took
        "target_rate": rate,
        "cpu": cpu,
    }


def paced_latencies(schedule: list[float], outcomes: list[bool], receipts: list[list[float]]) -> list[float]:
    """Latency of every delivery of a paced room, measured from its toggle's *scheduled* send time.

    ``outcomes``: per toggle, in send order, whether it took effect (the host's stream: its own
    ``room:lock_toggled`` or an ``error:room``); ``receipts``: each member's receive times, in order.
    The n-th event a member receives is the n-th toggle that took effect. Measuring from the
    schedule, not from the moment the generator got round to sending, means a generator that
    falls behind shows up as latency instead of hiding it. Toggles without an outcome (the
    phase ended before their answer) are assumed to have taken effect.
    """
    effective = [at for at, ok in zip(schedule, outcomes, strict=False) if ok] + schedule[len(outcomes) :]
    return [got - at for mine in receipts for got, at in zip(mine, effective, strict=False)]


async def idle_sockets(base: str, count: int) -> None:
    """Open ``count`` sockets, report, hold them until told to stop (stdin), for RSS/CPU sampling."""
    rooms = await _create_rooms(base, count // USERS_PER_ROOM)
    members = await _fill_rooms(base, rooms)
    print(json.dumps({"stage": "members-ready"}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    tokens = [m["token"] for row in members for m in row]
    opened: list[Any] = []
    queue = iter(tokens)

    async def opener() -> None:
        for token in queue:
            ws = await websockets.connect(_ws(base, token), compression=None, ping_interval=None, max_queue=None)
            await ws.recv()
            opened.append(ws)

    t0 = time.perf_counter()
    await asyncio.gather(*(opener() for _ in range(100)))
    print(
        json.dumps({"stage": "sockets-ready", "sockets": len(opened), "seconds": time.perf_counter() - t0}), flush=True
    )
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for ws in opened:
        ws.transport.abort()  # no closing handshakes: 10,000 of them would only measure the client
