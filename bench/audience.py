"""The audience scenarios (issue 13 §1, /work/shared/helpers/AUDIENCE.md): one room, 10,000 viewers.

A coordinator (``python -m bench.loadgen audience``) creates one room with
``audience: true``, connects its host, and starts ``procs`` viewer processes
(``python -m bench.audience viewers``): each admits its share of the viewers
(``POST /rooms/:code/audience``), opens their sockets (lean client, spread
round-robin over the roomd processes) and then obeys the coordinator's
commands, one JSON line each on stdin; it answers with one JSON line on stdout.

Phases, on one population of viewers:

- **broadcast**: the host sends ``game:send {to: "audience", type: "tick",
  data: {k, t}}`` at ``rate``/s for ``duration`` s, where ``t`` is the message's
  *scheduled* send time on CLOCK_MONOTONIC (one clock for every process on the
  machine). Every viewer's receive time minus ``t`` is a latency, so a
  coordinator that falls behind its schedule shows up as latency. Also per
  broadcast: the latency of its *last* viewer (the broadcast "reached every
  viewer" then).
- **vote**: the host opens a poll; every viewer votes once at a random time
  within ``window`` s (uniform), a random choice; each vote carries an ``id``,
  so roomd acks it (vote latency: scheduled time to ack). Once every vote is
  answered, the host closes the poll: the time from its ``poll:close`` to the
  ``poll:closed`` tally at the host, and whether that tally equals the votes
  acked. Redis commands/s over the voting (INFO commandstats deltas) and the
  ``poll:tally`` messages the host got (the host must not get one per vote).

The load generator's own receive work is inside the latencies: a burst of
10,000 frames takes each viewer process a while to read (its CPU is reported;
more processes spread it, on these 2 cores at the cost of roomd's CPU).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import select
import sys
import time
from typing import Any

from bench.httpclient import Connection
from bench.scenarios import CpuMeter, _hostport, _ws
from bench.servers import cpu_seconds, raise_fd_limit
from bench.wsclient import RECV_SIZE, LeanSocket, client_frame, split_frames

clock = time.monotonic  # CLOCK_MONOTONIC: the same in every process of the machine (and the loop's clock)
TICK = b'"type":"tick"'
ERROR = b'"error:room"'
ACK = b'"event":"ack"'
STATE = b'"room:state"'
POLL_ID = "bench-poll"
CHOICES = ["red", "green", "blue", "yellow"]


# ---------------------------------------------------------------------------------------------- viewer processes


class _Viewers:
    """One viewer process: its sockets and the counters every socket's callback shares."""

    def __init__(self) -> None:
        self.socks: list[LeanSocket] = []
        self.ticks: list[int] = []  # per viewer: ticks received
        self.latencies: list[float] = []
        self.last_by_t: dict[float, float] = {}  # broadcast (its scheduled t) -> latest receipt
        self.last_receipt = 0.0
        self.error_frames = 0
        self.first_error = ""
        # voting
        self.pending: dict[int, tuple[float, str]] = {}  # vote id -> (scheduled time, choice)
        self.vote_latencies: list[float] = []
        self.acked: dict[str, int] = {}
        self.vote_errors = 0
        self.last_answer = 0.0

    def handler(self, index: int) -> Any:
        ticks = self.ticks

        def on_text(payload: bytes) -> None:
            if TICK in payload:  # the hot path: 10,000 of these per broadcast, kept to a few bytes operations
                now = clock()
                start = payload.index(b'"t":', payload.index(TICK)) + 4
                t = float(payload[start : payload.index(b"}", start)])
                self.latencies.append(now - t)
                if now > self.last_by_t.get(t, 0.0):
                    self.last_by_t[t] = now
                self.last_receipt = now
                ticks[index] += 1
            elif ACK in payload:
                self._answer(json.loads(payload)["data"].get("id"), None)
            elif ERROR in payload:
                data = json.loads(payload)["data"]
                if data.get("id") in self.pending:
                    self._answer(data["id"], data.get("code", "?"))
                else:
                    self.error_frames += 1
                    self.first_error = self.first_error or payload[:300].decode(errors="replace")

        return on_text

    def _answer(self, vote_id: Any, error: str | None) -> None:
        entry = self.pending.pop(vote_id, None)
        if entry is None:
            return
        now = clock()
        self.last_answer = now
        if error is None:
            self.vote_latencies.append(now - entry[0])
            self.acked[entry[1]] = self.acked.get(entry[1], 0) + 1
        else:
            self.vote_errors += 1
            self.first_error = self.first_error or f"poll:vote refused: {error}"


async def _admit(base: str, code: str, names: list[str], as_members: bool, concurrency: int = 25) -> list[Any]:
    """POST /rooms/:code/audience for each name (or /join in members mode): tokens, or the failure."""
    host, port = _hostport(base)
    path = f"/rooms/{code}/join" if as_members else f"/rooms/{code}/audience"
    out: list[Any] = [None] * len(names)
    jobs = iter(range(len(names)))

    async def worker() -> None:
        conn = Connection(host, port)
        for i in jobs:
            status, body = await conn.request("POST", path, {"displayName": names[i]})
            out[i] = body["token"] if status == 201 else f"{status} {body}"
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def _connect_viewers(state: _Viewers, bases: list[str], code: str, count: int, first: int,
                           as_members: bool) -> dict[str, Any]:  # fmt: skip
    """Admit ``count`` viewers and open their sockets (asyncio; 50 in flight); the set-up figures."""
    loop = asyncio.get_running_loop()
    failures: list[str] = []
    t0 = clock()
    tokens = await _admit(bases[0], code, [f"v{first + i}" for i in range(count)], as_members)
    admitted = clock()
    jobs = iter(range(count))
    state.ticks = [0] * count

    async def connector() -> None:
        for i in jobs:
            token = tokens[i]
            if not token or " " in token:
                failures.append(f"admit: {token}"[:200])
                continue
            opened: asyncio.Future[None] = loop.create_future()

            def first_frame(payload: bytes, opened: asyncio.Future[None] = opened) -> None:
                if not opened.done():
                    opened.set_result(None) if STATE in payload else opened.set_exception(
                        ConnectionError(payload[:200].decode(errors="replace"))
                    )

            try:
                sock = await LeanSocket.connect(_ws(bases[(first + i) % len(bases)], token), first_frame)
                await asyncio.wait_for(opened, 30)
            except (OSError, ConnectionError, TimeoutError) as exc:
                failures.append(f"connect: {exc}"[:200])
                continue
            sock.on_text = state.handler(len(state.socks))  # index assigned once connected: no gaps
            state.socks.append(sock)

    await asyncio.gather(*(connector() for _ in range(50)))
    del state.ticks[len(state.socks) :]  # in place: the handlers hold this list
    return {"stage": "ready", "viewers": len(state.socks), "failed": len(failures), "first_failure": failures[:1],
            "admit_seconds": admitted - t0, "connect_seconds": clock() - admitted}  # fmt: skip


class _Raw:
    """The viewers' sockets served by a bare epoll loop once they are open.

    asyncio costs ~15-20 µs per readable socket (selector, handle, transport,
    protocol); 10,000 viewers x 5 broadcasts/s made the load generator, on the
    same two cores as roomd, the bigger consumer. Here a readable socket is one
    os.read and the frame split: a few µs. Pings are answered; votes are
    written with os.write (small frames on an idle socket).
    """

    def __init__(self, state: _Viewers) -> None:
        self.state = state
        self.ep = select.epoll()
        self.fds: list[int] = []
        self.bufs: dict[int, bytearray] = {}
        self.handlers: dict[int, Any] = {}
        self.closed = 0
        for sock in state.socks:
            assert sock.transport is not None
            sock.transport.pause_reading()  # the asyncio loop no longer runs; belt and braces
            fd = sock.transport.get_extra_info("socket").fileno()
            self.fds.append(fd)
            self.bufs[fd] = bytearray(sock.buffer)
            self.handlers[fd] = sock.on_text
            self.ep.register(fd, select.EPOLLIN)
        self.stdin = sys.stdin.fileno()
        self.ep.register(self.stdin, select.EPOLLIN)
        self.timers: list[tuple[float, int, str]] = []  # (at, viewer, frame text), sorted by at

    def serve(self, done: Any, deadline: float) -> bool:
        """Serve sockets (and due timers) until ``done()`` or the deadline; True if stdin became readable."""
        read, timers = self._read, self.timers
        while not done():
            now = clock()
            if now >= deadline:
                return False
            while timers and timers[-1][0] <= now:  # sorted latest first: pop() from the end
                _, viewer, text = timers.pop()
                self.send_text(viewer, text)
            wait = min(deadline, timers[-1][0] if timers else deadline, now + 0.05) - now
            for fd, _ in self.ep.poll(max(0.0, wait)):
                if fd == self.stdin:
                    return True
                read(fd)
        return False

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, RECV_SIZE)  # not more: a big bytes object allocated, then shrunk, per read
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.ep.unregister(fd)
            self.closed += 1
            return
        buf = self.bufs[fd]
        if not buf and data[0] == 0x81:  # the usual case: exactly one whole text frame, no copy into the buffer
            n = data[1]
            if n < 126 and len(data) == 2 + n:
                self.handlers[fd](data[2:])
                return
            if n == 126 and len(data) == 4 + (data[2] << 8 | data[3]):
                self.handlers[fd](data[4:])
                return
        buf += data
        for opcode, payload in split_frames(buf):
            if opcode == 0x1:
                self.handlers[fd](payload)
            elif opcode == 0x9:
                self._write(fd, client_frame(0xA, payload))

    def send_text(self, viewer: int, text: str) -> None:
        self._write(self.fds[viewer], client_frame(0x1, text.encode()))

    def _write(self, fd: int, frame: bytes) -> None:
        try:
            os.write(fd, frame)
        except OSError:
            self.state.error_frames += 1  # a frame that could not be written (socket gone): counted, not fatal


def viewers_main(bases: list[str], code: str, count: int, first: int, as_members: bool, seed: int) -> None:
    """A viewer process: admit and connect (asyncio), report ready, then obey commands on a bare epoll loop."""
    state = _Viewers()
    rng = random.Random(seed)
    loop = asyncio.new_event_loop()  # kept open (not run) afterwards: it owns the transports of the sockets
    ready = loop.run_until_complete(_connect_viewers(state, bases, code, count, first, as_members))
    raw = _Raw(state)
    _emit(ready)
    while True:
        raw.serve(lambda: False, clock() + 3600)  # returns when a command arrives
        line = sys.stdin.readline()
        if not line:
            break
        command = json.loads(line)
        if command["cmd"] == "broadcast":
            _report_broadcast(raw, command["expected"], command["deadline"])
        elif command["cmd"] == "vote":
            _run_votes(raw, rng, command["pollId"], command["choices"], command["start"], command["window"],
                       command["deadline"])  # fmt: skip
        else:
            break
    os._exit(0)  # no teardown of 10,000 transports whose loop never runs again


def _report_broadcast(raw: _Raw, expected: int, deadline: float) -> None:
    """Wait until every viewer got ``expected`` ticks (or the deadline), then report and reset."""
    state = raw.state
    total = expected * len(state.socks)  # O(1) per loop turn: a drain trickles in one socket at a time
    raw.serve(lambda: len(state.latencies) >= total, deadline)
    per_t = {t: last - t for t, last in state.last_by_t.items()}
    _emit({"stage": "broadcast", "deliveries": len(state.latencies), "latencies": state.latencies,
           "last_viewer": per_t, "last_receipt": state.last_receipt,
           "short_viewers": sum(1 for n in state.ticks if n < expected), "closed_by_server": raw.closed,
           "error_frames": state.error_frames, "first_error": state.first_error})  # fmt: skip
    state.latencies, state.last_by_t = [], {}


def _run_votes(raw: _Raw, rng: random.Random, poll_id: str, choices: list[str], start: float, window: float,
               deadline: float) -> None:  # fmt: skip
    """Every viewer votes once, at a random time in [start, start + window); report once all are answered."""
    state = raw.state
    plan = []
    for viewer, vote_id in zip(range(len(state.socks)), itertools.count(1), strict=False):
        at, choice = start + rng.uniform(0, window), rng.choice(choices)
        state.pending[vote_id] = (at, choice)
        text = f'{{"event":"poll:vote","data":{{"pollId":"{poll_id}","choice":"{choice}"}},"id":{vote_id}}}'
        plan.append((at, viewer, text))
    raw.timers = sorted(plan, reverse=True)
    raw.serve(lambda: not raw.timers and not state.pending, deadline)
    _emit({"stage": "vote", "sent": len(plan) - len(raw.timers), "acked": state.acked,
           "latencies": state.vote_latencies, "errors": state.vote_errors, "unanswered": len(state.pending),
           "last_answer": state.last_answer, "closed_by_server": raw.closed, "error_frames": state.error_frames,
           "first_error": state.first_error})  # fmt: skip
    raw.timers = []


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------- the coordinator


class _Host:
    """The room's host socket: what the coordinator needs from its frames."""

    def __init__(self) -> None:
        self.sock: LeanSocket | None = None
        self.ids = iter(range(1, 1 << 62))
        self.acks = 0
        self.errors: list[dict[str, Any]] = []
        self.events: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self.tallies = 0
        self.audience_count: int | None = None

    def on_text(self, payload: bytes) -> None:
        if TICK in payload:
            return
        if ACK in payload:
            self.acks += 1
            return
        frame = json.loads(payload)
        event, data = frame.get("event"), frame.get("data") or {}
        if event == "error:room":
            self.errors.append(data)
            for waiting in self.events.values():  # a refused poll:open/close: nothing else will come
                if not waiting.done() and data.get("event") in ("poll:open", "poll:close"):
                    waiting.set_result((clock(), {"error": data}))
        elif event == "poll:tally":
            self.tallies += 1
        elif event == "audience:count":
            self.audience_count = data.get("count")
        if event in self.events and not self.events[event].done():
            self.events[event].set_result((clock(), data))

    def expect(self, event: str) -> asyncio.Future[tuple[float, dict[str, Any]]]:
        self.events[event] = asyncio.get_running_loop().create_future()
        return self.events[event]

    def send(self, event: str, data: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.send_text(json.dumps({"event": event, "data": data, "id": next(self.ids)}, separators=(",", ":")))


def _commandstats(redis_url: str) -> dict[str, int]:
    import redis  # roomd's own dependency

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items() if name != "cmdstat_info"}


def _command_rates(before: dict[str, int], after: dict[str, int], seconds: float) -> tuple[float, dict[str, float]]:
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    top = dict(sorted(((k, v / seconds) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1])[:6])
    return sum(delta.values()) / seconds, top


def _machine_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    return sum(fields), sum(fields) - fields[3] - fields[4]


class _Meters:
    """roomd, Redis, the load generator (coordinator + viewer processes) and the whole machine, over one window."""

    def __init__(self, pids: list[int], redis_pid: int | None, loadgen_pids: list[int]) -> None:
        self.roomd, self.redis = CpuMeter(pids), CpuMeter([redis_pid] if redis_pid else [])
        self.loadgen_pids = loadgen_pids
        self.loadgen0 = sum(cpu_seconds(p) for p in loadgen_pids) + time.process_time()
        self.machine0, self.t0 = _machine_jiffies(), time.perf_counter()

    def read(self) -> dict[str, float]:
        seconds = time.perf_counter() - self.t0
        machine = _machine_jiffies()
        share = (machine[1] - self.machine0[1]) / max(1, machine[0] - self.machine0[0]) * 100 * (os.cpu_count() or 1)
        loadgen = (sum(cpu_seconds(p) for p in self.loadgen_pids) + time.process_time() - self.loadgen0) / seconds * 100
        cpu, redis_cpu = self.roomd.percent(), self.redis.percent()
        return {"cpu": cpu, "redis_cpu": redis_cpu, "loadgen_cpu": loadgen, "machine_cpu": share}


async def _request_line(proc: asyncio.subprocess.Process, command: dict[str, Any] | None) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    if command is not None:
        proc.stdin.write((json.dumps(command) + "\n").encode())
        await proc.stdin.drain()
    line = await proc.stdout.readline()
    if not line:
        raise SystemExit(f"bench.audience: a viewer process ended early ({await proc.wait()})")
    result: dict[str, Any] = json.loads(line)
    return result


async def audience(bases: list[str], viewers: int, procs: int, duration: float, rate: float, window: float,
                   redis_url: str, pids: list[int], redis_pid: int | None = None, as_members: bool = False,
                   seed: int = 13) -> dict[str, Any]:  # fmt: skip
    """Both phases on one population; ``{"skipped": reason}`` when roomd has no audience yet."""
    host_addr = _hostport(bases[0])
    conn = Connection(*host_addr)
    status, made = await conn.request(
        "POST", "/rooms", {"displayName": "host", **({} if as_members else {"audience": True})}
    )
    if status != 201:
        await conn.close()
        return {"skipped": f"POST /rooms with audience: true answered {status} {made}"}
    code = made["roomCode"]
    if not as_members:  # the probe viewer: the route exists, admits viewers
        status, body = await conn.request("POST", f"/rooms/{code}/audience", {"displayName": "probe"})
        if status != 201:
            await conn.close()
            return {"skipped": f"POST /rooms/{code}/audience answered {status} {body}: roomd has no audience yet"}
    await conn.close()

    host = _Host()
    state = host.expect("room:state")
    host.sock = await LeanSocket.connect(_ws(bases[0], made["token"]), host.on_text)
    await asyncio.wait_for(state, 10)

    shares = [viewers // procs + (1 if i < viewers % procs else 0) for i in range(procs)]
    children = []
    for i, share in enumerate(shares):
        params = {"bases": bases, "code": code, "count": share, "first": sum(shares[:i]), "as_members": as_members,
                  "seed": seed + i}  # fmt: skip
        children.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.audience",
                "viewers",
                json.dumps(params),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 28,
            )
        )
    try:
        ready = await asyncio.gather(*(_request_line(c, None) for c in children))
        connected = sum(r["viewers"] for r in ready)
        failed = sum(r["failed"] for r in ready)
        first_failure = next((r["first_failure"][0] for r in ready if r["first_failure"]), "")
        setup = {"viewers": connected, "viewers_failed": failed, "first_failure": first_failure,
                 "admit_seconds": max(r["admit_seconds"] for r in ready),
                 "connect_seconds": max(r["connect_seconds"] for r in ready)}  # fmt: skip
        print(json.dumps({"stage": "viewers-ready", **setup}), file=sys.stderr, flush=True)
        await asyncio.sleep(1.5)  # audience:count settles (at most one a second)
        setup["audience_count_at_host"] = host.audience_count if host.audience_count is not None else -1
        loadgen_pids = [c.pid for c in children]
        broadcast = await _broadcast(host, children, connected, duration, rate, redis_url, pids, redis_pid,
                                     loadgen_pids, as_members)  # fmt: skip
        vote = None
        if not as_members:
            vote = await _vote(host, children, connected, window, redis_url, pids, redis_pid, loadgen_pids)
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b'{"cmd":"quit"}\n')
            await child.stdin.drain()
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), 60)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
        if host.sock is not None:
            host.sock.abort()
    phases = [{**setup, **broadcast}]
    if vote is not None:
        phases.append({**setup, **vote})
    return {"phases": phases}


async def _broadcast(host: _Host, children: list[asyncio.subprocess.Process], viewers: int, duration: float,
                     rate: float, redis_url: str, pids: list[int], redis_pid: int | None, loadgen_pids: list[int],
                     as_members: bool) -> dict[str, Any]:  # fmt: skip
    count = max(1, round(duration * rate))
    errors_before = len(host.errors)
    stats0, meters = _commandstats(redis_url), _Meters(pids, redis_pid, loadgen_pids)
    start = clock() + 0.05
    lags = []
    for k in range(count):
        at = start + k / rate
        await asyncio.sleep(max(0.0, at - clock()))
        lags.append(clock() - at)
        host.send("game:send", {"to": "all" if as_members else "audience", "type": "tick", "data": {"k": k, "t": at}})
    last_send = clock()
    deadline = start + count / rate + 15
    results = await asyncio.gather(
        *(_request_line(c, {"cmd": "broadcast", "expected": count, "deadline": deadline}) for c in children)
    )
    last_receipt = max(r["last_receipt"] for r in results)
    window = max(duration, last_receipt - start)
    cpu = meters.read()
    redis_rate, top = _command_rates(stats0, _commandstats(redis_url), time.perf_counter() - meters.t0)
    latencies = [x for r in results for x in r["latencies"]]
    last_viewer: dict[float, float] = {}
    for r in results:
        for t, lat in r["last_viewer"].items():
            last_viewer[t] = max(last_viewer.get(t, 0.0), lat)
    deliveries = len(latencies)
    missing = count * viewers - deliveries
    error_frames = sum(r["error_frames"] for r in results) + len(host.errors) - errors_before
    return {
        "count": deliveries,
        "elapsed": window,
        "sent": count,
        "broadcasts": count,
        "latencies": latencies,
        "last_viewer_latencies": list(last_viewer.values()),
        "errors": max(0, missing) + error_frames,
        "missing_deliveries": max(0, missing),
        "short_viewers": sum(r["short_viewers"] for r in results),
        "error_frames": error_frames,
        "first_error": next((r["first_error"] for r in results if r["first_error"]), "")
        or (json.dumps(host.errors[errors_before]) if len(host.errors) > errors_before else ""),
        "target_rate": rate,
        "send_lags": lags,
        "send_span": max(duration, last_send - start),
        "redis_cmds_per_s": redis_rate,
        "redis_top": top,
        **cpu,
    }


async def _vote(host: _Host, children: list[asyncio.subprocess.Process], viewers: int, window: float,
                redis_url: str, pids: list[int], redis_pid: int | None,
                loadgen_pids: list[int]) -> dict[str, Any]:  # fmt: skip
    opened = host.expect("poll:opened")
    host.send("poll:open", {"pollId": POLL_ID, "choices": CHOICES, "prompt": "bench"})
    _, answer = await asyncio.wait_for(opened, 10)
    if "error" in answer:
        return {"count": 0, "elapsed": window, "latencies": [], "errors": viewers, "cpu": 0.0,
                "first_error": f"poll:open refused: {answer['error']}", "skipped": "poll:open refused"}  # fmt: skip
    start = clock() + 0.3
    deadline = start + window + 30
    stats0, meters = _commandstats(redis_url), _Meters(pids, redis_pid, loadgen_pids)
    tallies0 = host.tallies
    results = await asyncio.gather(
        *(
            _request_line(
                c,
                {
                    "cmd": "vote",
                    "pollId": POLL_ID,
                    "choices": CHOICES,
                    "start": start,
                    "window": window,
                    "deadline": deadline,
                },
            )
            for c in children
        )
    )
    last_answer = max(r["last_answer"] for r in results)
    voting = max(window, last_answer - start)
    cpu = meters.read()
    redis_rate, top = _command_rates(stats0, _commandstats(redis_url), time.perf_counter() - meters.t0)
    tallies = host.tallies - tallies0
    closed = host.expect("poll:closed")
    closed_at = clock()
    host.send("poll:close", {"pollId": POLL_ID})
    try:
        received_at, final = await asyncio.wait_for(closed, 10)
    except TimeoutError:
        received_at, final = float("nan"), {"error": "no poll:closed within 10 s"}
    acked: dict[str, int] = {}
    for r in results:
        for choice, n in r["acked"].items():
            acked[choice] = acked.get(choice, 0) + n
    votes = sum(acked.values())
    exact = tally_exact(final, acked)
    errors = sum(r["errors"] + r["unanswered"] for r in results)
    return {
        "count": votes,  # votes acked
        "elapsed": voting,
        "sent": sum(r["sent"] for r in results),
        "latencies": [x for r in results for x in r["latencies"]],  # a vote's scheduled time -> its ack
        "errors": errors,
        "unanswered": sum(r["unanswered"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), "")
        or (json.dumps(final["error"]) if "error" in final else ""),
        "votes_acked": votes,
        "tally_votes": final.get("votes", -1),
        "tally_exact": 1.0 if exact else 0.0,
        "close_to_tally_ms": (received_at - closed_at) * 1000,
        "answers_after_window_ms": max(0.0, last_answer - start - window) * 1000,
        "host_tallies": tallies,
        "host_tallies_per_s": tallies / voting,
        "redis_cmds_per_s": redis_rate,
        "redis_top": top,
        **cpu,
    }


def tally_exact(final: dict[str, Any], acked: dict[str, int]) -> bool:
    """Does the host's ``poll:closed`` data equal the votes roomd acked, choice by choice and in total?"""
    if "error" in final or not isinstance(final.get("counts"), dict):
        return False
    counts = {choice: n for choice, n in final["counts"].items() if n}  # a choice nobody picked may say 0
    return counts == {c: n for c, n in acked.items() if n} and final.get("votes") == sum(acked.values())


def main() -> None:
    raise_fd_limit()
    if sys.argv[1] != "viewers":
        raise SystemExit("usage: python -m bench.audience viewers '<json params>' (started by the coordinator)")
    viewers_main(**json.loads(sys.argv[2]))


if __name__ == "__main__":
    main()
