"""``python -m bench.cluster``: the fan-out scenario on a 3-master Redis Cluster next to one Redis.

Same machine, same load generator (bench.scenarios' fan-out: 100 rooms x 10 members,
hosts toggling the lock; saturation = closed loop, paced = 2,000 toggles/s), same
roomd settings; only the Redis target differs:

* ``one Redis``: a private ``redis-server`` (``REDIS_URL``): PUBLISH/SUBSCRIBE;
* ``cluster``: 3 masters + 3 replicas on loopback (``REDIS_CLUSTER_NODES``), started
  like the tests' fixture (tests/support/redis_ha.py): scripts on the room's shard,
  SPUBLISH, one SSUBSCRIBE connection per master per roomd process.

Each with one roomd process and with two (members of every room spread over both:
the pub/sub path). Reported per phase: deliveries/s, p50/p99 of the delivery latency,
roomd CPU (100% = one core) and the Redis processes' CPU over the whole round (room
set-up included; for the cluster, the masters' sum and the busiest one). On this
2-core machine the load generator, roomd and every Redis share the cores: the point
is the difference between the two targets, not absolute capacity (docs/scaling.md).

roomd refuses ``REDIS_CLUSTER_NODES`` until the build serves Cluster
(``roomd.domain.redis_target.CLUSTER_READY``): the cluster rows are then skipped
with a message, and the one-Redis rows still run. Bounded: about 2 minutes with the
default 2 rounds of 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.servers import ROOT, Redis, Roomd, cpu_seconds, raise_fd_limit

RESULTS = ROOT / "bench" / "results"
RATES: list[float | None] = [2000, None]  # paced 2,000 toggles/s (20,000 deliveries/s), then saturation


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


SETUP_CONCURRENCY = 16
"""HTTP requests in flight while rooms are created and filled (bench.loadgen uses 50). A Cluster
answers part of such a burst with 503: redis-py's cluster client has no waiting pool, and commands
beyond its 64 connections to one node (the client's rate-limit key and the cross-room indexes sit
on one node) fail at once (docs/scaling.md). Set-up retries them and reports how many; in the
measured phases such an error:room leaves a toggle unanswered, and the phase is reported failed."""


async def _setup(base: str, rooms: int) -> tuple[list[list[dict[str, Any]]], int]:
    """Rooms of 10 (host first), created and filled SETUP_CONCURRENCY requests at a time; a 503
    (see SETUP_CONCURRENCY) is retried after 50 ms and counted."""
    from urllib.parse import urlsplit

    from bench.httpclient import Connection
    from bench.scenarios import USERS_PER_ROOM

    parts = urlsplit(base)
    retried = 0

    async def call(conn: Connection, path: str, name: str) -> dict[str, Any]:
        nonlocal retried
        for _ in range(100):
            status, body = await conn.request("POST", path, {"displayName": name})
            if status == 201:
                return body  # type: ignore[no-any-return]
            assert status == 503, body
            retried += 1
            await asyncio.sleep(0.05)
        raise RuntimeError(f"POST {path}: 503 a hundred times")

    async def run(jobs: list[tuple[int, str, str]], out: dict[int, list[dict[str, Any]]]) -> None:
        queue = iter(jobs)

        async def worker() -> None:
            conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
            for room, path, name in queue:
                out.setdefault(room, []).append(await call(conn, path, name))
            await conn.close()

        await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))

    accounts: dict[int, list[dict[str, Any]]] = {}
    await run([(i, "/rooms", f"host{i}") for i in range(rooms)], accounts)
    joins = [(i, f"/rooms/{accounts[i][0]['roomCode']}/join", f"p{n}")
             for i in range(rooms) for n in range(USERS_PER_ROOM - 1)]  # fmt: skip
    await run(joins, accounts)
    return [accounts[i] for i in range(rooms)], retried


async def loadgen(bases: list[str], rooms: int, duration: float, rates: list[float | None],
                  pids: list[int]) -> dict[str, Any]:  # fmt: skip
    """bench.scenarios' fan-out phases on a population set up by :func:`_setup`."""
    from bench import scenarios

    accounts, retried = await _setup(bases[0], rooms)
    population = await scenarios._connect_rooms(bases, accounts)
    phases: list[dict[str, Any]] = []
    for rate in rates:  # saturation last: a phase that fails leaves the population unusable
        try:
            phases.append(await scenarios._fanout_phase(population, duration, rate, pids))
        except TimeoutError:
            phases.append({"failed": "a toggle got no room:lock_toggled within 30 s (an error:room instead?)"})
            break
    phases += [{"failed": "not run: an earlier phase failed"}] * (len(rates) - len(phases))
    for row in population:
        for member in row:
            assert member.sock is not None
            member.sock.abort()
    return {"phases": phases, "setup_503s": retried}


def fanout_round(bases: list[str], pids: list[int], duration: float) -> list[dict[str, Any]]:
    """One population of 100 rooms x 10 sockets, every phase in RATES, in a load-generator process."""
    params = {"bases": bases, "rooms": 100, "duration": duration, "rates": RATES, "pids": pids}
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--loadgen", json.dumps(params)],
        cwd=ROOT, capture_output=True, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bench.cluster: load generator failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    result = next(r for r in lines if r.get("stage") == "result")
    if result["setup_503s"]:
        print(f"  (set-up: {result['setup_503s']} requests answered 503 and retried)", file=sys.stderr, flush=True)
    return result["phases"]  # type: ignore[no-any-return]


def cluster_ready() -> tuple[bool, str]:
    """Whether this build's roomd serves REDIS_CLUSTER_NODES (it refuses it at start otherwise)."""
    sys.path.insert(0, str(ROOT))
    from roomd.domain import redis_target

    if getattr(redis_target, "CLUSTER_READY", True):
        return True, ""
    return False, "this roomd build refuses REDIS_CLUSTER_NODES (roomd.domain.redis_target.CLUSTER_READY is False)"


def run_target(
    label: str, start_roomd: Callable[[], Roomd], redis_pids: list[int], flush: Callable[[], None],
    procs: int, rounds: int, duration: float,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    servers = [start_roomd() for _ in range(procs)]
    out: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, str] = {}
    try:
        bases = [s.base for s in servers]
        pids = [p for s in servers for p in s.pids()]
        for _ in range(rounds):
            flush()
            redis0 = {p: cpu_seconds(p) for p in redis_pids}
            t0 = time.perf_counter()
            phases = fanout_round(bases, pids, duration)
            seconds = time.perf_counter() - t0
            redis_pct = [(cpu_seconds(p) - redis0[p]) / seconds * 100 for p in redis_pids]
            for rate, phase in zip(RATES, phases, strict=True):
                name = f"{label}, {procs} roomd, " + ("saturation" if rate is None else f"paced {rate:.0f}/s")
                if "failed" in phase:
                    failed[name] = phase["failed"]
                    print(f"  {name:42s} FAILED: {phase['failed']}", file=sys.stderr, flush=True)
                    continue
                out.setdefault(name, []).append(
                    {
                        "rate": phase["count"] / phase["elapsed"] if phase["elapsed"] else 0.0,
                        "p50_ms": percentile(phase["latencies"], 0.5) * 1000,
                        "p99_ms": percentile(phase["latencies"], 0.99) * 1000,
                        "roomd_cpu_pct": phase["cpu"],
                        "redis_cpu_pct_sum": sum(redis_pct),
                        "redis_cpu_pct_max": max(redis_pct),
                    }
                )
                r = out[name][-1]
                print(
                    f"  {name:42s} {r['rate']:>8.0f}/s  p50 {r['p50_ms']:5.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                    f"roomd {r['roomd_cpu_pct']:4.0f}%  redis {r['redis_cpu_pct_sum']:3.0f}%",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for s in servers:
            s.stop()
    medians: dict[str, dict[str, Any]] = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]} | {"rounds": len(rows)}
        for name, rows in out.items()
    }
    return medians | {name: {"failed": why} for name, why in failed.items() if name not in medians}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per phase")
    parser.add_argument("--procs", default="1,2", help="roomd process counts to run, comma-separated")
    parser.add_argument("--loadgen", metavar="JSON", help=argparse.SUPPRESS)  # the load-generator process
    args = parser.parse_args()
    raise_fd_limit()
    if args.loadgen:
        result = asyncio.run(loadgen(**json.loads(args.loadgen)))
        print(json.dumps({"stage": "result", **result}), flush=True)
        return
    procs = [int(p) for p in args.procs.split(",") if p]
    started = time.perf_counter()
    results: dict[str, Any] = {}
    ready, why = cluster_ready()

    redis = Redis()
    try:
        for n in procs:
            results |= run_target("one Redis", lambda: Roomd(redis.url), [redis.process.pid], redis.flush, n,
                                  args.rounds, args.duration)  # fmt: skip
    finally:
        redis.stop()

    if not ready:
        print(f"\nbench.cluster: cluster rows skipped: {why}", file=sys.stderr)
    else:
        sys.path.insert(0, str(ROOT))
        from tests.support.redis_ha import ClusterServers

        cluster = ClusterServers().start()
        try:
            masters = cluster.masters()
            pids = [m.process.pid for m in masters if m.process is not None]

            def flush() -> None:
                for m in masters:
                    with m.client() as c:
                        c.flushdb()

            def start() -> Roomd:
                return Roomd("", REDIS_CLUSTER_NODES=cluster.startup_nodes)

            for n in procs:
                results |= run_target("cluster (3 masters)", start, pids, flush, n, args.rounds, args.duration)
        finally:
            cluster.cleanup()

    print(f"\nfan-out, 100 rooms x 10 members, medians of {args.rounds} rounds x {args.duration:.0f} s "
          f"({os.cpu_count()} cores, load generator on the same machine)\n")  # fmt: skip
    print(f"{'target':44s} {'deliveries/s':>12s} {'p50 ms':>7s} {'p99 ms':>7s} {'roomd cpu':>9s} {'redis cpu':>14s}")
    for name, r in results.items():
        if "failed" in r:
            print(f"{name:44s} FAILED: {r['failed']}")
            continue
        redis_cpu = f"{r['redis_cpu_pct_sum']:.0f}%" + (
            f" (max {r['redis_cpu_pct_max']:.0f}%)" if r["redis_cpu_pct_sum"] != r["redis_cpu_pct_max"] else ""
        )
        print(f"{name:44s} {r['rate']:>12.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
              f"{r['roomd_cpu_pct']:>8.0f}% {redis_cpu:>14s}")  # fmt: skip
    if not ready:
        print(f"(cluster rows skipped: {why})")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("cluster-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps({"results": results, "cluster_ready": ready, "rounds": args.rounds,
                                "duration": args.duration, "cpus": os.cpu_count()}, indent=2))  # fmt: skip
    print(f"\nresults: {Path(path).relative_to(ROOT)}  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
