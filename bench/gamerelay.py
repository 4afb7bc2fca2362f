"""The ``game-relay`` scenario (issue 11): players send to the host, the host answers in shared state.

100 rooms x 10 members (a host and 9 players), lean sockets (wsclient.py). One
cycle is what a Jackbox-style game does all the time:

1. a player sends ``game:send {to: "host", type: "answer", data: {p, t}}``
   (``t`` = its send time: the load generator is one process, one clock);
2. the host receives ``game:message`` -> *player -> host latency*; it answers at
   once with ``state:set {key: "answer.<p>", value: {to, t}}`` (visible to all);
3. every member, the host included, receives ``state:changed`` -> the player
   who sent the message measures the *round trip* (its send to its answer).

So one player message is 11 deliveries (1 ``game:message`` + 10
``state:changed``) and two client frames (with ``id``, as the public JS client
sends them, so each also gets an ``ack``; acks are counted apart, not as
deliveries).

Phases on one population of sockets: ``None`` = closed loop (saturation:
every player keeps one message in flight, the next once its answer arrived);
a number = a fixed schedule offering that many player messages/s in all
(each room sends at rate/rooms, its players taking turns). Paced messages carry
their *scheduled* send time as ``t``, so latencies are measured from the schedule.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from typing import Any

from bench.scenarios import CpuMeter, Member, _connect_rooms, _create_rooms, _fill_rooms

GAME_MESSAGE = b'"game:message"'
STATE_CHANGED = b'"state:changed"'
ACK = b'"event":"ack"'
ERROR = b'"error:room"'
DELIVERIES_PER_MESSAGE = 11  # 1 game:message to the host + state:changed to all 10 members
DRAIN_SECONDS = 30  # at most, after the schedule
DRAIN_IDLE_SECONDS = 2.0  # ...and no longer than this without any frame (failed commands are never answered)


def _machine_jiffies() -> tuple[int, int]:
    """(all, busy) CPU jiffies of the whole machine: other work during a phase shows as noise."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    return sum(fields), sum(fields) - fields[3] - fields[4]


async def game_relay(bases: list[str], rooms: int, duration: float, rates: list[float | None],
                     pids: list[int], acks: bool = True, active: int = 9,
                     redis_pid: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Set up rooms and sockets once; one result per phase in ``rates``.

    ``active``: players per room that take part (closed loop: each of them
    keeps one message in flight). ``acks``: frames carry ``id`` (as the JS
    client's do), so roomd also writes an ``ack`` per client frame.
    """
    made = await _create_rooms(bases[0], rooms)
    accounts = await _fill_rooms(bases[0], made)
    population = await _connect_rooms(bases, accounts)
    phases = []
    for rate in rates:
        phases.append(await _phase(population, accounts, duration, rate, pids, acks, active, redis_pid))
    for row in population:
        for member in row:
            assert member.sock is not None
            member.sock.abort()
    return {"phases": phases}


class _Phase:
    """Counters shared by every socket's callback during one phase."""

    def __init__(self, duration: float, acks: bool) -> None:
        self.to_host: list[float] = []  # player send -> host receives game:message
        self.round_trip: list[float] = []  # player send -> the same player receives the answering state:changed
        self.deliveries = 0
        self.acks = 0
        self.sent = 0  # player messages
        self.answered = 0  # answers seen by their player
        self.errors = 0
        self.first_error = ""
        self.last_delivery = 0.0
        self.send_lags: list[float] = []  # paced: actual send time - scheduled send time
        self.last_send = 0.0
        self.ids = itertools.count(1)
        self.with_ids = acks
        self.start = time.perf_counter()
        self.stop = self.start + duration

    def frame(self, event: str, data: str) -> str:
        if self.with_ids:
            return f'{{"event":"{event}","data":{data},"id":{next(self.ids)}}}'
        return f'{{"event":"{event}","data":{data}}}'

    def other(self, payload: bytes) -> None:
        self.last_delivery = time.perf_counter()
        if ACK in payload:
            self.acks += 1
        elif ERROR in payload:
            self.errors += 1
            if not self.first_error:
                self.first_error = payload[:300].decode(errors="replace")


def _player_message(phase: _Phase, player: Member, index: int, scheduled: float | None = None) -> None:
    """Send one player message stamped ``t``: its scheduled time when paced, so that a generator
    falling behind its schedule shows as latency instead of hiding it; the send time otherwise."""
    phase.sent += 1
    now = time.perf_counter()
    if scheduled is None:
        t = now
    else:
        t = scheduled
        phase.send_lags.append(now - scheduled)
        phase.last_send = now
    player.send(phase.frame("game:send", f'{{"to":"host","type":"answer","data":{{"p":{index},"t":{t!r}}}}}'))


async def _phase(population: list[list[Member]], accounts: list[list[dict[str, Any]]], duration: float,
                 rate: float | None, pids: list[int], acks: bool, active: int,
                 redis_pid: int | None) -> dict[str, Any]:  # fmt: skip
    phase = _Phase(duration, acks)
    closed = rate is None

    for row, room in zip(population, accounts, strict=True):
        host = row[0]

        def host_on(payload: bytes, host: Member = host) -> None:
            if GAME_MESSAGE in payload:
                now = time.perf_counter()
                message = json.loads(payload)["data"]
                sent_at = message["data"]["t"]
                phase.to_host.append(now - sent_at)
                phase.deliveries += 1
                phase.last_delivery = now
                value = json.dumps({"to": message["from"], "t": sent_at}, separators=(",", ":"))
                host.send(phase.frame("state:set", f'{{"key":"answer.{message["data"]["p"]}","value":{value}}}'))
            elif STATE_CHANGED in payload:
                phase.deliveries += 1
                phase.last_delivery = time.perf_counter()
            else:
                phase.other(payload)

        host.handler = host_on
        for index in range(1, len(row)):
            player, uid = row[index], room[index]["userId"].encode()

            def player_on(payload: bytes, player: Member = player, uid: bytes = uid, index: int = index) -> None:
                if STATE_CHANGED in payload:
                    now = time.perf_counter()
                    phase.deliveries += 1
                    phase.last_delivery = now
                    if uid in payload:  # the answer to this player's message (its id is in value.to)
                        phase.round_trip.append(now - json.loads(payload)["data"]["value"]["t"])
                        phase.answered += 1
                        if closed and now < phase.stop:
                            _player_message(phase, player, index)
                else:
                    phase.other(payload)

            player.handler = player_on

    meter = CpuMeter(pids)
    redis_meter = CpuMeter([redis_pid] if redis_pid else [])
    cpu0 = time.process_time()
    machine0 = _machine_jiffies()
    phase.start = time.perf_counter()
    phase.stop = phase.start + duration
    if closed:
        for row in population:
            for index in range(1, min(len(row), active + 1)):
                _player_message(phase, row[index], index)
    else:
        assert rate is not None
        period = len(population) / rate
        await asyncio.gather(
            *(_paced_room(phase, row, period, i * period / len(population), active) for i, row in enumerate(population))
        )
    # Drain: every message answered and every state:changed delivered; give up after DRAIN_SECONDS, or
    # DRAIN_IDLE_SECONDS without a frame (an overloaded roomd fails commands: REDIS_UNAVAILABLE after
    # REDIS_COMMAND_TIMEOUT; their answers never come).
    # CPU figures are taken at the last progress, so that an idle wait does not dilute them.

    def cpu_now() -> tuple[float, float, float, float]:
        machine1 = _machine_jiffies()
        share = (machine1[1] - machine0[1]) / max(1, machine1[0] - machine0[0]) * 100 * (os.cpu_count() or 1)
        own = (time.process_time() - cpu0) / (time.perf_counter() - phase.start) * 100
        return meter.percent(), own, share, redis_meter.percent()

    cpu, loadgen_cpu, machine_cpu, redis_cpu = cpu_now()
    deadline = time.perf_counter() + duration + DRAIN_SECONDS
    seen = phase.last_delivery
    while time.perf_counter() < deadline and (
        phase.answered < phase.sent or phase.deliveries < phase.sent * DELIVERIES_PER_MESSAGE
    ):
        if phase.last_delivery != seen:
            seen = phase.last_delivery
            cpu, loadgen_cpu, machine_cpu, redis_cpu = cpu_now()
        elif time.perf_counter() - max(seen, phase.stop) > DRAIN_IDLE_SECONDS:
            break
        await asyncio.sleep(0.002)
    else:
        cpu, loadgen_cpu, machine_cpu, redis_cpu = cpu_now()
    # Paced: the schedule's length, or longer if roomd fell behind (then the rate shows it).
    elapsed = phase.last_delivery - phase.start if closed else max(duration, phase.last_delivery - phase.start)
    missing = phase.sent * DELIVERIES_PER_MESSAGE - phase.deliveries
    for row in population:
        for member in row:
            member.handler = None
    await asyncio.sleep(0.2)  # stragglers of a failed phase must not reach the next one's callbacks
    return {
        "count": phase.deliveries,
        "elapsed": elapsed,
        "sent": phase.sent,
        "messages": phase.sent,
        "acks": phase.acks,
        "latencies": phase.to_host,
        "rt_latencies": phase.round_trip,
        # player messages whose round trip failed (error:room, or never answered)
        "errors": max(phase.errors, phase.sent - phase.answered),
        "error_frames": phase.errors,  # error:room frames received (any socket)
        "missing_deliveries": max(0, missing),
        "first_error": phase.first_error,
        "send_lags": phase.send_lags,
        "send_span": max(duration, phase.last_send - phase.start),  # paced: how long sending the schedule took
        "target_rate": rate,
        "cpu": cpu,
        "loadgen_cpu": loadgen_cpu,
        "redis_cpu": redis_cpu,
        "machine_cpu": machine_cpu,  # every process on the machine (100% = one core)
    }


async def _paced_room(phase: _Phase, row: list[Member], period: float, offset: float, active: int) -> None:
    """One room's schedule: a message every ``period`` s, its players taking turns."""
    players = list(range(1, min(len(row), active + 1)))
    next_at = phase.start + offset
    for k in itertools.count():
        if next_at >= phase.stop:
            return
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        index = players[k % len(players)]
        _player_message(phase, row[index], index, next_at)
        next_at += period
