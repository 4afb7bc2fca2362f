"""``python -m bench.costs``: what one operation costs roomd and Redis (docs/scaling.md rests on it).

Not a throughput benchmark: every phase runs a known number of operations at a
moderate, paced rate against real roomd processes and a private ``redis-server``
(loopback, free ports), and divides what they cost by that number:

* roomd CPU: the process's own CPU time (``/proc/PID/stat`` utime + stime), not wall
  clock, so other work on a shared machine does not count (it only adds noise);
* Redis CPU: the redis-server process's CPU time, the same way;
* Redis commands: ``INFO commandstats`` deltas. Commands a script runs are counted
  too (Redis counts them): ``evalsha`` is the number of scripts, the rest is what
  the scripts and roomd's own calls did;
* Redis network bytes: ``INFO stats`` ``total_net_input_bytes`` / ``total_net_output_bytes``;
* frame sizes: what the clients received (WebSocket payload plus its 2- or 4-byte header);
* pub/sub bytes: what one extra raw SUBSCRIBE connection receives per event;
* idle sockets: RSS, file descriptors, CPU at rest and per ping, of a fresh roomd process;
* Redis memory: ``used_memory`` per room of 8 (members connected) and ``MEMORY USAGE`` of
  one room's keys after its events (the history list grows with every event up to
  ``ROOM_HISTORY_SIZE``).

Background work (heartbeats, sweeps, reconciliation, pings) is measured while idle
before each group of phases and subtracted, prorated by time. The load generator
(a lean asyncio WebSocket client, bench/wsclient.py) runs in this process; its CPU
is not counted anywhere. Every wait is bounded: the run stops by itself (about a
minute here) and writes ``bench/results/costs-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.httpclient import Connection
from bench.servers import ROOT, Redis, Roomd, raise_fd_limit, rss_bytes
from bench.wsclient import LeanSocket

RESULTS = ROOT / "bench" / "results"
ROOM_SIZE = 8
SETTLE = 0.3  # seconds without a frame before a phase is considered finished


def cpu_seconds(pid: int) -> float:
    """CPU time of every live thread of ``pid``, in ns resolution (``/proc/PID/stat`` counts
    10 ms ticks: too coarse for a few hundred operations of a few hundred µs)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return total / 1e9


# --- Redis probe (raw socket: its own bytes are known exactly and subtracted) ----------


class RedisProbe:
    """INFO over a raw socket; one snapshot = CPU, commandstats, network and memory counters."""

    REQUEST = b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n"

    def __init__(self, port: int, pid: int) -> None:
        self.port, self.pid = port, pid
        self.sock = socket.create_connection(("127.0.0.1", port))

    def command(self, *args: str) -> bytes:
        """One command, its raw reply (bulk string payload or the simple/integer line)."""
        self.sock.sendall(_resp(*args))
        return _read_reply(self.sock)

    def info(self) -> tuple[dict[str, str], int]:
        self.sock.sendall(self.REQUEST)
        raw = _read_reply(self.sock)
        fields = {}
        for line in raw.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                fields[key] = value
        header = len(f"${len(raw)}\r\n") + 2
        return fields, len(raw) + header

    def close(self) -> None:
        self.sock.close()


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _read_reply(sock: socket.socket) -> bytes:
    """A reply of INFO/MEMORY/SCAN-like commands: bulk, simple, integer or a flat array of bulks."""
    buf = b""

    def line() -> bytes:
        nonlocal buf
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, buf = buf.partition(b"\r\n")
        return head

    def bulk(n: int) -> bytes:
        nonlocal buf
        while len(buf) < n + 2:
            buf += sock.recv(65536)
        data, buf = buf[:n], buf[n + 2 :]
        return data

    def value() -> bytes:
        head = line()
        kind = head[:1]
        if kind == b"$":
            n = int(head[1:])
            return b"" if n < 0 else bulk(n)
        if kind == b"*":
            return b"\n".join(value() for _ in range(int(head[1:])))
        if kind == b"-":
            raise RuntimeError(head.decode())
        return head[1:]

    return value()


@dataclasses.dataclass
class Snap:
    t: float
    roomd: dict[int, float]
    redis_cpu: float
    calls: dict[str, int]
    usec: dict[str, int]
    net_in: int
    net_out: int
    reply_len: int


def snap(probe: RedisProbe, pids: list[int]) -> Snap:
    fields, reply_len = probe.info()
    calls, usec = {}, {}
    for key, value in fields.items():
        if key.startswith("cmdstat_"):
            parts = dict(p.split("=") for p in value.split(","))
            calls[key[8:]] = int(parts["calls"])
            usec[key[8:]] = int(parts["usec"])
    return Snap(
        t=time.perf_counter(),
        roomd={p: cpu_seconds(p) for p in pids},
        redis_cpu=cpu_seconds(probe.pid),
        calls=calls,
        usec=usec,
        net_in=int(fields["total_net_input_bytes"]),
        net_out=int(fields["total_net_output_bytes"]),
        reply_len=reply_len,
    )


@dataclasses.dataclass
class Rates:
    """Background per second while idle (subtracted from every phase, prorated)."""

    roomd: dict[int, float]
    redis_cpu: float
    calls: dict[str, float]
    net_in: float
    net_out: float


def delta(a: Snap, b: Snap) -> dict[str, Any]:
    calls = {k: b.calls.get(k, 0) - a.calls.get(k, 0) for k in b.calls}
    calls["info"] = calls.get("info", 0) - 1  # our own snapshot
    return {
        "seconds": b.t - a.t,
        "roomd": {p: b.roomd[p] - a.roomd[p] for p in b.roomd},
        "redis_cpu": b.redis_cpu - a.redis_cpu,
        "calls": {k: v for k, v in calls.items() if v},
        "usec": {k: b.usec.get(k, 0) - a.usec.get(k, 0) for k in b.usec if k != "info"},
        "net_in": b.net_in - a.net_in - len(RedisProbe.REQUEST),
        "net_out": b.net_out - a.net_out - a.reply_len,
    }


async def idle_rates(probe: RedisProbe, pids: list[int], seconds: float) -> Rates:
    a = snap(probe, pids)
    await asyncio.sleep(seconds)
    d = delta(a, snap(probe, pids))
    s = d["seconds"]
    return Rates(
        roomd={p: v / s for p, v in d["roomd"].items()},
        redis_cpu=d["redis_cpu"] / s,
        calls={k: v / s for k, v in d["calls"].items()},
        net_in=d["net_in"] / s,
        net_out=d["net_out"] / s,
    )


def per_op(d: dict[str, Any], base: Rates, ops: int, labels: dict[int, str]) -> dict[str, Any]:
    """Subtract the prorated background and divide by the number of operations."""
    s = d["seconds"]
    roomd = {labels[p]: max(0.0, v - base.roomd.get(p, 0.0) * s) / ops * 1e6 for p, v in d["roomd"].items()}
    calls = {k: round((v - base.calls.get(k, 0.0) * s) / ops, 2) for k, v in d["calls"].items()}
    return {
        "ops": ops,
        "seconds": round(s, 2),
        "roomd_cpu_us": {k: round(v, 1) for k, v in roomd.items()},
        "roomd_cpu_us_total": round(sum(roomd.values()), 1),
        "redis_cpu_us": round(max(0.0, d["redis_cpu"] - base.redis_cpu * s) / ops * 1e6, 1),
        "redis_script_us": round(sum(v for k, v in d["usec"].items() if k in ("evalsha", "eval")) / ops, 1),
        "redis_calls": {k: v for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if abs(v) >= 0.01},
        "evalsha": calls.get("evalsha", 0.0) + calls.get("eval", 0.0),
        "redis_bytes_in": round((d["net_in"] - base.net_in * s) / ops),
        "redis_bytes_out": round((d["net_out"] - base.net_out * s) / ops),
    }


# --- clients -------------------------------------------------------------------------


class Tally:
    """Every frame any member received; lets a phase wait for a count (of deliveries: frames
    other than acks) or for quiet."""

    def __init__(self) -> None:
        self.count = 0  # frames other than acks
        self.acks = 0
        self.asked = 0  # frames sent with an id (each owed an ack)
        self.last = time.perf_counter()
        self.sizes: dict[str, list[int]] = collections.defaultdict(list)
        self.record = False

    def add(self, event: str, wire: int) -> None:
        if event == "ack":
            self.acks += 1
        else:
            self.count += 1
        self.last = time.perf_counter()
        if self.record:
            self.sizes[event].append(wire)

    async def reach(self, n: int, timeout: float = 30) -> None:
        deadline = time.perf_counter() + timeout
        while self.count < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"received {self.count} deliveries, expected {n}")
            await asyncio.sleep(0.01)

    async def quiet(self, for_s: float = SETTLE, timeout: float = 30, after: int | None = None) -> None:
        """Until no frame came for ``for_s``; with ``after`` (a count), first until more than that came."""
        deadline = time.perf_counter() + timeout
        while (after is not None and self.count <= after) or time.perf_counter() - self.last < for_s:
            if time.perf_counter() > deadline:
                raise TimeoutError("frames kept arriving")
            await asyncio.sleep(0.02)


class Sock(LeanSocket):
    """The lean client, plus: notices when the server closed the connection."""

    def __init__(self, on_text: Callable[[bytes], None]) -> None:
        super().__init__(on_text)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def close_frame(self) -> None:
        self._send(0x8, struct.pack("!H", 1000))


class Member:
    def __init__(self, account: dict[str, Any], tally: Tally) -> None:
        self.token: str = account["token"]
        self.user_id: str = account["userId"]
        self.code: str = account["roomCode"]
        self.tally = tally
        self.sock: Sock | None = None
        self.state: asyncio.Future[None] | None = None
        self.ids = 0

    def on_text(self, payload: bytes) -> None:
        event = json.loads(payload)["event"]
        self.tally.add(event, len(payload) + (2 if len(payload) < 126 else 4))
        if event == "room:state" and self.state is not None and not self.state.done():
            self.state.set_result(None)

    async def connect(self, base: str) -> None:
        self.state = asyncio.get_running_loop().create_future()
        url = base.replace("http://", "ws://") + "/ws?token=" + self.token
        self.sock = await Sock.connect(url, self.on_text)
        await asyncio.wait_for(self.state, 10)

    async def close(self) -> None:
        assert self.sock is not None
        self.sock.close_frame()
        await asyncio.wait_for(self.sock.closed, 10)
        self.sock = None

    def send(self, event: str, data: Any = None) -> None:
        assert self.sock is not None
        self.ids += 1
        self.tally.asked += 1
        frame: dict[str, Any] = {"event": event, "id": self.ids}
        if data is not None:
            frame["data"] = data
        self.sock.send_text(json.dumps(frame, separators=(",", ":")))


async def pool(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    it = iter(jobs)

    async def worker() -> None:
        for job in it:
            await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def http_jobs(base: str, requests: list[tuple[str, str, Any]], concurrency: int = 8) -> list[Any]:
    """Keep-alive connections (like a proxy's upstream), each request awaited; bodies in order."""
    parts = urlsplit(base)
    results: list[Any] = [None] * len(requests)
    queue = iter(enumerate(requests))

    async def worker() -> None:
        conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        for i, (method, path, body) in queue:
            status, reply = await conn.request(method, path, body)
            assert status < 300, (status, reply)
            results[i] = reply
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


# --- the run --------------------------------------------------------------------------


Make = Callable[[list["Member"], int], tuple[str, Any]]
"""``make(room, k)``: the k-th event frame (event name, data) a room's sender sends."""


def game_to_all(room: list[Member], k: int) -> tuple[str, Any]:
    data = {"round": k, "phase": "answer", "deadline": 1_700_000_000_000 + k}
    return "game:send", {"to": "all", "type": "round", "data": data}


def answer_to_host(room: list[Member], k: int) -> tuple[str, Any]:
    return "game:send", {"type": "answer", "data": {"text": f"a banana {k}"}}


def toggle(room: list[Member], k: int) -> tuple[str, Any]:
    return "room:toggle_lock", None


def scoreboard(room: list[Member], k: int) -> tuple[str, Any]:
    """A public entry holding every member's score (8 ids of 21 characters and a number each)."""
    return "state:set", {"key": "scores", "value": {m.user_id: (k * 7 + i) % 100 for i, m in enumerate(room)}}


DELIVERIES: dict[Make, int] = {toggle: 8, game_to_all: 8, answer_to_host: 1, scoreboard: 8}
"""Frames (acks aside) one event of each kind causes in a room of 8 (plus one ack to the sender)."""

REPLAYED: list[tuple[str, int, Make]] = [
    ("room:toggle_lock", 0, toggle),
    ("game:send to all", 0, game_to_all),
    ("state:set scores", 0, scoreboard),
]


def _monitor_args(line: str) -> list[str]:
    """The arguments of one MONITOR line (``ts [db addr] "arg" "arg" ...``, C-style escapes)."""
    start = line.find('] "')
    if start < 0:
        return []
    text, i, args = line[start + 2 :], 0, []
    while i < len(text):
        if text[i] != '"':
            i += 1
            continue
        i += 1
        buf = []
        while text[i] != '"':
            if text[i] == "\\":
                nxt = text[i + 1]
                if nxt == "x":
                    buf.append(chr(int(text[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                buf.append({"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}.get(nxt, nxt))
                i += 2
                continue
            buf.append(text[i])
            i += 1
        args.append("".join(buf))
        i += 1
    return args


class Run:
    def __init__(self, rooms: int, events_per_room: int, rate: float, idle_sockets: int) -> None:
        self.rooms_n, self.events_per_room, self.rate, self.idle_n = rooms, events_per_room, rate, idle_sockets
        self.results: dict[str, Any] = {}
        self.tally = Tally()

    async def measure(
        self, name: str, ops: int, base: Rates, work: Callable[[], Awaitable[None]], servers: dict[str, Roomd]
    ) -> dict[str, Any]:
        labels = {p: label for label, s in servers.items() for p in s.pids()}
        pids = list(labels)
        a = snap(self.probe, pids)
        await work()
        await self.tally.quiet()
        result = per_op(delta(a, snap(self.probe, pids)), base, ops, labels)
        self.results[name] = result
        print(
            f"  {name:42s} roomd {result['roomd_cpu_us_total']:7.0f} µs  redis {result['redis_cpu_us']:6.0f} µs  "
            f"scripts {result['evalsha']:.2f}  cmds {sum(v for k, v in result['redis_calls'].items()):5.1f}",
            file=sys.stderr,
            flush=True,
        )
        return result

    async def paced_events(self, rooms: list[list[Member]], sender: int, make: Make, per_room: int) -> int:
        """Each room's ``sender`` sends ``per_room`` events on a fixed schedule (``rate`` in all); waits for them."""
        period = len(rooms) / self.rate

        async def one(i: int, room: list[Member]) -> None:
            await asyncio.sleep(i * period / len(rooms))
            start = time.perf_counter()
            for k in range(1, per_room + 1):
                room[sender].send(*make(room, k))
                await asyncio.sleep(max(0.0, start + k * period - time.perf_counter()))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(rooms)))
        return per_room * len(rooms)

    async def deliveries_per_event(self, rooms: list[list[Member]], sender: int, make: Make) -> int:
        """One warm-up event per room; the deliveries one event causes (known from the protocol,
        checked here). Acks are counted apart: see :meth:`event_phase`."""
        deliveries = DELIVERIES[make]
        before = self.tally.count
        for room in rooms:
            room[sender].send(*make(room, 0))
        await self.tally.reach(before + deliveries * len(rooms))
        await self.tally.quiet()
        if self.tally.count != before + deliveries * len(rooms):  # a late frame of an earlier phase
            print(f"  (warm-up: {self.tally.count - before} deliveries, expected {deliveries * len(rooms)})",
                  file=sys.stderr)  # fmt: skip
        return deliveries

    async def event_phase(
        self, name: str, rooms: list[list[Member]], sender: int, make: Make, base: Rates,
        servers: dict[str, Roomd],
    ) -> None:  # fmt: skip
        """Paced events; done once every delivery arrived. Every event carries an ``id``, as the
        JS client's do, so the sender also gets an ``ack``; acks that have not arrived by the end
        of the phase are reported (``acks_missing_at_end``), not waited for: an ack can lag behind
        until the next event of the room reaches the sender's process (see docs/scaling.md)."""
        deliveries = await self.deliveries_per_event(rooms, sender, make)
        expected = self.tally.count + deliveries * len(rooms) * self.events_per_room
        self.tally.sizes.clear()
        self.tally.record = True

        async def work() -> None:
            await self.paced_events(rooms, sender, make, self.events_per_room)
            await self.tally.reach(expected)

        ops = len(rooms) * self.events_per_room
        result = await self.measure(name, ops, base, work, servers)
        self.tally.record = False
        result["frame_bytes"] = {e: int(statistics.median(v)) for e, v in self.tally.sizes.items()}
        result["deliveries_per_event"] = round(sum(len(v) for e, v in self.tally.sizes.items() if e != "ack") / ops, 2)
        result["acks_missing_at_end"] = self.tally.asked - self.tally.acks  # of every frame sent so far

    async def main(self) -> None:
        self.redis = Redis()
        self.probe = RedisProbe(self.redis.port, self.redis.process.pid)
        started = time.perf_counter()
        try:
            await self.population_phases()
            self.redis_capacity()
            await self.idle_phases()
        finally:
            self.probe.close()
            self.redis.stop()
        self.results["derived"] = derive(self.results)
        self.results["_run"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "rooms": self.rooms_n,
            "events_per_room": self.events_per_room,
            "paced_events_per_s": self.rate,
            "load_average_at_end": os.getloadavg(),
            "machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "redis": self.probe_version,
        }

    async def population_phases(self) -> None:
        a = Roomd(self.redis.url)
        b = Roomd(self.redis.url)
        servers = {"A": a}
        self.probe_version = self.probe.command("INFO", "server").decode().split("redis_version:")[1].split()[0]
        members: list[list[Member]] = []
        try:
            self.probe.command("CONFIG", "RESETSTAT")
            base0 = await idle_rates(self.probe, a.pids() + b.pids(), 2.0)
            self.results["idle_instance_no_sockets"] = {
                "roomd_cpu_pct": round(base0.roomd[a.pids()[0]] * 100, 2),
                "redis_calls_per_s": {k: round(v, 1) for k, v in base0.calls.items() if v >= 0.05},
            }
            n = self.rooms_n
            created: list[Any] = []

            async def create() -> None:
                created.extend(
                    await http_jobs(a.base, [("POST", "/rooms", {"displayName": f"host{i}"}) for i in range(n)])
                )

            await self.measure("http POST /rooms", n, base0, create, servers)
            codes = [c["roomCode"] for c in created]
            joined: list[Any] = []
            joins = [
                ("POST", f"/rooms/{code}/join", {"displayName": f"p{j}"})
                for j in range(ROOM_SIZE - 1)
                for code in codes
            ]

            async def join() -> None:
                joined.extend(await http_jobs(a.base, joins))

            await self.measure("http POST /rooms/:code/join", len(joins), base0, join, servers)
            gets = [("GET", f"/rooms/{codes[i % n]}", None) for i in range(4 * n)]

            async def get() -> None:
                await http_jobs(a.base, gets)

            await self.measure("http GET /rooms/:code", len(gets), base0, get, servers)
            accounts: dict[str, list[Any]] = {c["roomCode"]: [c] for c in created}
            for (_, path, _), body in zip(joins, joined, strict=True):
                accounts[path.split("/")[2]].append(body)
            members = [[Member(acc, self.tally) for acc in accounts[code]] for code in codes]

            async def connect_all() -> None:
                await pool([lambda m=m: m.connect(a.base) for room in members for m in room], 16)

            await self.measure(
                "ws connect, room filling up (avg 3.5 others)", n * ROOM_SIZE, base0, connect_all, servers
            )
            base = await idle_rates(self.probe, a.pids(), 3.0)
            self.results["idle_instance_with_sockets"] = {
                "sockets": n * ROOM_SIZE,
                "roomd_cpu_pct": round(base.roomd[a.pids()[0]] * 100, 2),
                "redis_calls_per_s": {k: round(v, 1) for k, v in base.calls.items() if v >= 0.05},
            }
            last = ROOM_SIZE - 1
            results: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
            for _ in range(2):  # a reconnection: the last member leaves and comes back, 7 others connected
                results["dis"].append(
                    await self.measure(
                        "ws disconnect (7 others connected)",
                        n,
                        base,
                        lambda: pool([r[last].close for r in members], 16),
                        servers,
                    )
                )
                results["con"].append(
                    await self.measure(
                        "ws connect (7 others connected)",
                        n,
                        base,
                        lambda: pool([lambda r=r: r[last].connect(a.base) for r in members], 16),
                        servers,
                    )
                )
            for key, name in (
                ("dis", "ws disconnect (7 others connected)"),
                ("con", "ws connect (7 others connected)"),
            ):
                self.results[name] = _mean(results[key])

            phases: list[tuple[str, int, Make]] = [
                ("event room:toggle_lock (host), 8 local", 0, toggle),
                ("event game:send to all (host), 8 local", 0, game_to_all),
                ("event game:send to host (player), 8 local", 3, answer_to_host),
                ("event state:set scores (host), 8 local", 0, scoreboard),
            ]
            for name, sender, make in phases:
                await self.event_phase(name, members, sender, make, base, servers)

            # the pub/sub path: members 4..7 of every room move to B (both processes subscribe)
            half = ROOM_SIZE // 2
            await pool([lambda m=m: m.close() for room in members for m in room[half:]], 16)
            await pool([lambda m=m: m.connect(b.base) for room in members for m in room[half:]], 16)
            await self.tally.quiet()
            both = {"A": a, "B": b}
            base2 = await idle_rates(self.probe, a.pids() + b.pids(), 3.0)
            await self.event_phase("event room:toggle_lock, 4 on A + 4 on B", members, 0, toggle, base2, both)
            await self.event_phase("event game:send to host (player on B)", members, half, answer_to_host, base2, both)
            await self.pubsub_bytes(members)
            self.room_memory(codes[0])
            await self.capture_scripts(members[0])
        finally:
            for room in members:
                for m in room:
                    if m.sock is not None:
                        m.sock.abort()
            a.stop()
            b.stop()

    async def pubsub_bytes(self, rooms: list[list[Member]]) -> None:
        """Bytes one more subscriber of a room's channel receives per event (the RESP message)."""
        sample = rooms[: min(50, len(rooms))]
        channels_raw = self.probe.command("PUBSUB", "CHANNELS", "*").decode().split("\n")
        channels_raw += self.probe.command("PUBSUB", "SHARDCHANNELS", "*").decode().split("\n")
        room_codes = [room[0].code for room in sample]
        chosen = [c for c in channels_raw if c and any(code in c for code in room_codes)]
        reader, writer = await asyncio.open_connection("127.0.0.1", self.redis.port)
        writer.write(_resp("SUBSCRIBE", *chosen))
        confirmations = b""
        while confirmations.count(b"subscribe") < len(chosen):
            confirmations += await asyncio.wait_for(reader.read(65536), 5)

        async def drain(seconds: float) -> int:
            total = 0
            deadline = time.perf_counter() + seconds
            while (left := deadline - time.perf_counter()) > 0:
                try:
                    total += len(await asyncio.wait_for(reader.read(65536), left))
                except TimeoutError:
                    break
            return total

        out: dict[str, Any] = {"channels": len(chosen)}
        for name, sender, make in (
            ("room:toggle_lock", 0, toggle),
            ("game:send to all", 0, game_to_all),
            ("game:send to host", 3, answer_to_host),
            ("state:set scores", 0, scoreboard),
        ):
            for room in sample:
                room[sender].send(*make(room, 99))
            out[name] = round(await drain(1.0) / len(sample))
        writer.close()
        await self.tally.quiet()
        self.results["pubsub_bytes_per_event_per_subscriber"] = out
        print(f"  pub/sub bytes per event and subscriber: {out}", file=sys.stderr, flush=True)

    async def capture_scripts(self, room: list[Member]) -> None:
        """The exact EVALSHA of one event of each kind (MONITOR), for :meth:`redis_capacity`."""
        channels = self.probe.command("PUBSUB", "CHANNELS", f"*{room[0].code}*").decode().split("\n")
        self.capture_channel = next(c for c in channels if c)
        monitor = socket.create_connection(("127.0.0.1", self.redis.port))
        monitor.sendall(_resp("MONITOR"))
        assert monitor.recv(5) == b"+OK\r\n"
        for _, sender, make in REPLAYED:
            before = self.tally.count
            room[sender].send(*make(room, 500))
            await self.tally.quiet(after=before)
        monitor.settimeout(0.5)
        raw = b""
        with contextlib.suppress(TimeoutError):
            while chunk := monitor.recv(1 << 20):
                raw += chunk
        monitor.close()
        calls = []
        for line in raw.decode(errors="replace").splitlines():
            args = _monitor_args(line)
            if args and args[0].lower() == "evalsha" and any(room[0].code in a for a in args):
                calls.append(args)
        assert len(calls) == len(REPLAYED), f"captured {len(calls)} scripts"
        self.captured = {name: args for (name, _, _), args in zip(REPLAYED, calls, strict=True)}

    def redis_capacity(self, requests: int = 60_000) -> None:
        """Each captured event script replayed by redis-benchmark on a room without sockets, one
        subscriber draining its channel: Redis CPU per script when Redis is the busy part, i.e. how
        many such events one Redis core (one shard) runs per second. Twice: pipelined (8 connections
        x 16: the floor, Redis reads many commands per wake-up) and one command at a time on 50
        connections (what roomd's connection pools send; the benchmark client shares the machine)."""
        binary = shutil.which("redis-benchmark")
        if binary is None or not getattr(self, "captured", None):
            print("  (redis-benchmark not installed: Redis capacity not measured)", file=sys.stderr)
            return
        sub = socket.create_connection(("127.0.0.1", self.redis.port))
        sub.sendall(_resp("SUBSCRIBE", self.capture_channel))
        drained = [0]

        def drain() -> None:
            with contextlib.suppress(OSError):
                while chunk := sub.recv(1 << 20):
                    drained[0] += len(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        out: dict[str, Any] = {}
        try:
            for name, args in self.captured.items():
                for label, clients, pipeline in (("pipelined", 8, 16), ("one at a time", 50, 1)):
                    cpu0, t0, drained0 = cpu_seconds(self.probe.pid), time.perf_counter(), drained[0]
                    subprocess.run(
                        [binary, "-h", "127.0.0.1", "-p", str(self.redis.port), "-c", str(clients),
                         "-P", str(pipeline), "-n", str(requests), "-q", *args],
                        check=True, capture_output=True, timeout=120,
                    )  # fmt: skip
                    seconds, cpu = time.perf_counter() - t0, cpu_seconds(self.probe.pid) - cpu0
                    out[f"{name}, {label}"] = result = {
                        "connections": clients,
                        "pipeline": pipeline,
                        "scripts_per_s": round(requests / seconds),
                        "redis_cpu_pct": round(cpu / seconds * 100),
                        "redis_cpu_us_per_script": round(cpu / requests * 1e6, 1),
                        "per_redis_core_per_s": round(requests / cpu),
                        # each replay published its event (a replayed no-op would cost less and publish nothing)
                        "published_bytes_per_script": round((drained[0] - drained0) / requests),
                    }
                    print(f"  Redis capacity, {name}, {label}: {result}", file=sys.stderr, flush=True)
        finally:
            sub.close()
        out["subscriber_bytes"] = drained[0]
        self.results["redis_capacity_per_event_script"] = out

    def room_memory(self, code: str) -> None:
        """MEMORY USAGE of every key naming the room (after its events: the history list is full-ish)."""
        keys: list[str] = []
        cursor = "0"
        while True:
            reply = self.probe.command("SCAN", cursor, "MATCH", f"*{code}*", "COUNT", "1000").decode().split("\n")
            cursor, batch = reply[0], [k for k in reply[1:] if k]
            keys += batch
            if cursor == "0":
                break
        usage: dict[str, Any] = {}
        for key in keys:
            kind = self.probe.command("TYPE", key).decode()
            size = int(self.probe.command("MEMORY", "USAGE", key, "SAMPLES", "0"))
            entry: dict[str, Any] = {"type": kind, "bytes": size}
            if kind == "list":
                entry["length"] = int(self.probe.command("LLEN", key))
            usage[key.replace(code, "CODE")] = entry
        self.results["redis_memory_one_room_after_events"] = usage
        print(f"  Redis memory of one room's keys: {usage}", file=sys.stderr, flush=True)

    async def idle_phases(self) -> None:
        """A fresh process with pings every 2 s: RSS, fds and CPU per idle socket, Redis memory per room."""
        self.probe.command("FLUSHDB")
        interval = 2.0
        c = Roomd(self.redis.url, WS_PING_INTERVAL=str(interval))
        pid = c.pids()[0]
        sockets: list[Member] = []
        try:
            base = await idle_rates(self.probe, [pid], 3.0)
            n_rooms = self.idle_n // ROOM_SIZE
            mem0 = int(self.probe.info()[0]["used_memory"])
            created = await http_jobs(c.base, [("POST", "/rooms", {"displayName": f"h{i}"}) for i in range(n_rooms)])
            joins = [("POST", f"/rooms/{r['roomCode']}/join", {"displayName": f"p{j}"})
                     for r in created for j in range(ROOM_SIZE - 1)]  # fmt: skip
            joined = await http_jobs(c.base, joins)
            mem1 = int(self.probe.info()[0]["used_memory"])
            sockets = [Member(acc, self.tally) for acc in [*created, *joined]]
            await asyncio.sleep(1.0)
            rss0, fds0 = rss_bytes(pid), len(os.listdir(f"/proc/{pid}/fd"))
            t0 = time.perf_counter()
            await pool([lambda m=m: m.connect(c.base) for m in sockets], 16)
            connect_s = time.perf_counter() - t0
            await self.tally.quiet(1.0)
            mem2 = int(self.probe.info()[0]["used_memory"])
            await asyncio.sleep(2 * interval)
            rss1, fds1 = rss_bytes(pid), len(os.listdir(f"/proc/{pid}/fd"))
            rest = await idle_rates(self.probe, [pid], 6.0)
            cpu_pct = (rest.roomd[pid] - base.roomd[pid]) * 100
            pings = len(sockets) / interval
            n = len(sockets)
            self.results["idle_sockets"] = {
                "sockets": n,
                "rss_before_mib": round(rss0 / 2**20, 1),
                "rss_after_mib": round(rss1 / 2**20, 1),
                "rss_per_socket_kib": round((rss1 - rss0) / n / 1024, 1),
                "fds_per_socket": round((fds1 - fds0) / n, 3),
                "ping_interval_s": interval,
                "cpu_pct_with_pings": round(rest.roomd[pid] * 100, 2),
                "cpu_us_per_ping": round(cpu_pct / 100 / pings * 1e6, 1),
                "redis_calls_per_s_at_rest": {k: round(v, 2) for k, v in rest.calls.items() if v >= 0.05},
                "redis_cpu_pct_at_rest": round(rest.redis_cpu * 100, 2),
                "connect_rate_per_s_wall": round(n / connect_s),
            }
            self.results["redis_memory_per_room_of_8"] = {
                "rooms": n_rooms,
                "after_http_bytes": round((mem1 - mem0) / n_rooms),
                "members_connected_bytes": round((mem2 - mem0) / n_rooms),
            }
            print(f"  idle: {self.results['idle_sockets']}", file=sys.stderr, flush=True)
            print(f"  redis memory per room: {self.results['redis_memory_per_room_of_8']}", file=sys.stderr, flush=True)
        finally:
            for m in sockets:
                if m.sock is not None:
                    m.sock.abort()
            c.stop()


def derive(r: dict[str, Any]) -> dict[str, float]:
    """A linear model of roomd CPU per event: send (client frame, script call, ack) + per subscribed
    process (receive the bus message, decode, frame) + per delivery (one socket write). Same script,
    8 vs 1 recipients -> per delivery; B's share of a split room (4 deliveries) -> per receiving process."""
    to_all = r["event game:send to all (host), 8 local"]["roomd_cpu_us_total"]
    to_host = r["event game:send to host (player), 8 local"]["roomd_cpu_us_total"]
    delivery = (to_all - to_host) / 7
    receive = r["event room:toggle_lock, 4 on A + 4 on B"]["roomd_cpu_us"]["B"] - 4 * delivery
    send = to_host - receive - 2 * delivery  # the game:message to the host and the ack to the sender
    return {"delivery_us": round(delivery, 1), "receive_per_process_us": round(receive, 1), "send_us": round(send, 1)}


def _mean(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Two rounds of the same phase, averaged (numbers only)."""
    out = dict(results[-1])
    out["ops"] = sum(r["ops"] for r in results)
    for key in (
        "roomd_cpu_us_total",
        "redis_cpu_us",
        "redis_script_us",
        "evalsha",
        "redis_bytes_in",
        "redis_bytes_out",
    ):
        out[key] = round(statistics.mean(r[key] for r in results), 2)
    out["redis_bytes_in"], out["redis_bytes_out"] = int(out["redis_bytes_in"]), int(out["redis_bytes_out"])
    out["roomd_cpu_us"] = {
        k: round(statistics.mean(r["roomd_cpu_us"][k] for r in results), 1) for k in out["roomd_cpu_us"]
    }
    names = {k for r in results for k in r["redis_calls"]}
    out["redis_calls"] = {k: round(statistics.mean(r["redis_calls"].get(k, 0) for r in results), 2) for k in names}
    return out


def report(results: dict[str, Any], path: Path) -> None:
    print("\nper operation (CPU time, background subtracted)")
    head = f"{'operation':44s} {'roomd µs':>9s} {'redis µs':>9s} {'scripts':>7s} {'cmds':>5s}"
    print(f"{head} {'→redis B':>8s} {'redis→ B':>8s}  deliveries, frame bytes")
    for name, r in results.items():
        if not isinstance(r, dict) or "roomd_cpu_us_total" not in r:
            continue
        cmds = sum(v for k, v in r["redis_calls"].items())
        frames = f"{r.get('deliveries_per_event', '')} {r.get('frame_bytes', '')}" if "frame_bytes" in r else ""
        if r.get("acks_missing_at_end"):
            frames += f" ({r['acks_missing_at_end']} acks still missing)"
        print(
            f"{name:44s} {r['roomd_cpu_us_total']:>9.0f} {r['redis_cpu_us']:>9.0f} {r['evalsha']:>7.2f} {cmds:>5.1f} "
            f"{r['redis_bytes_in']:>8d} {r['redis_bytes_out']:>8d}  {frames}"
        )
    d = results.get("derived", {})
    print(
        f"\nroomd per event, linear model: send {d.get('send_us')} µs + per receiving process "
        f"{d.get('receive_per_process_us')} µs + per delivery {d.get('delivery_us')} µs"
    )
    print(f"pub/sub bytes per event and subscriber: {results.get('pubsub_bytes_per_event_per_subscriber')}")
    for name, r in results.get("redis_capacity_per_event_script", {}).items():
        if isinstance(r, dict):
            print(f"Redis capacity, {name}: {r['redis_cpu_us_per_script']} µs/script, "
                  f"{r['per_redis_core_per_s']}/s per Redis core (Redis at {r['redis_cpu_pct']}%)")  # fmt: skip
    idle = results.get("idle_sockets", {})
    print(f"idle sockets: {idle.get('rss_per_socket_kib')} KiB RSS and {idle.get('fds_per_socket')} fd each, "
          f"{idle.get('cpu_us_per_ping')} µs CPU per ping")  # fmt: skip
    print(f"Redis memory per room of 8: {results.get('redis_memory_per_room_of_8')}")
    print(f"\nresults: {path}  ({results['_run']['seconds']} s)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=250, help="rooms of 8 for the event and connect phases")
    parser.add_argument("--events", type=int, default=10, help="events per room per event phase")
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s offered in all during event phases")
    parser.add_argument("--idle-sockets", type=int, default=4000)
    parser.add_argument("--timeout", type=float, default=240.0, help="the run gives up after this many seconds")
    args = parser.parse_args()
    raise_fd_limit()
    run = Run(args.rooms, args.events, args.rate, args.idle_sockets)

    async def bounded() -> None:
        await asyncio.wait_for(run.main(), args.timeout)

    asyncio.run(bounded())
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("costs-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(run.results, indent=2))
    report(run.results, path.relative_to(ROOT))


if __name__ == "__main__":
    main()
