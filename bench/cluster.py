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

Then the Redis side alone: one ``room:toggle_lock`` script replayed by redis-benchmark on one
Redis and on the cluster master serving the room (with its replica attached): Redis CPU per
event script, i.e. how many events one master's core runs per second.

roomd refuses ``REDIS_CLUSTER_NODES`` until the build serves Cluster
(``roomd.domain.redis_target.CLUSTER_READY``): the cluster rows are then skipped
with a message, and the one-Redis rows still run. Bounded: about 2 minutes with the
default 2 rounds of 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def script_cost(start_roomd: Callable[[], Roomd], *, single: Redis | None = None, cluster: Any = None,
                requests: int = 60_000) -> dict[str, Any]:  # fmt: skip
    """Redis CPU per ``room:toggle_lock`` script on the node serving the room (and on its replica).

    A room of 8 is made through roomd, one toggle's exact EVALSHA is captured with MONITOR on
    that node, roomd is stopped, and redis-benchmark replays it (50 connections, one command at
    a time, as roomd's pools send them) with one subscriber draining the room's channel.
    """
    import shutil
    import socket
    import threading
    import urllib.request

    from bench.costs import _monitor_args, _resp
    from bench.wsclient import LeanSocket

    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"skipped": "redis-benchmark is not installed"}

    def post(base: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(base + path, data=b'{"displayName":"b"}', method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    roomd = start_roomd()
    try:
        host = post(roomd.base, "/rooms")
        code = host["roomCode"]
        for _ in range(7):
            post(roomd.base, f"/rooms/{code}/join")
        if single is not None:
            port, pid, replica_pid, sub = single.port, single.process.pid, None, "SUBSCRIBE"
        else:
            with cluster.nodes[0].client() as c:
                slot = int(c.execute_command("CLUSTER", "KEYSLOT", f"room:{{{code}}}"))
            master = cluster.master_of_slot(slot)
            replica = next(n for n in cluster.nodes if n.running and n is not master
                           and n.info("replication").get("master_port") == master.port)  # fmt: skip
            port, pid, replica_pid, sub = master.port, master.process.pid, replica.process.pid, "SSUBSCRIBE"
        monitor = socket.create_connection(("127.0.0.1", port))
        monitor.sendall(_resp("MONITOR"))
        assert monitor.recv(5) == b"+OK\r\n"

        async def toggle() -> str:
            got: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def on_text(payload: bytes) -> None:
                if b"room:lock_toggled" in payload and not got.done():
                    got.set_result(None)

            url = roomd.base.replace("http://", "ws://") + "/ws?token=" + host["token"]
            sock = await LeanSocket.connect(url, on_text)
            sock.send_text('{"event":"room:toggle_lock","id":1}')
            await asyncio.wait_for(got, 10)
            sock.abort()
            return code

        asyncio.run(toggle())
        monitor.settimeout(0.5)
        raw = b""
        with contextlib.suppress(TimeoutError):
            while chunk := monitor.recv(1 << 20):
                raw += chunk
        monitor.close()
        calls = [a for line in raw.decode(errors="replace").splitlines()
                 if (a := _monitor_args(line)) and a[0].lower() == "evalsha" and any(code in x for x in a)]  # fmt: skip
        args = next(a for a in calls if "toggle" in a)  # not the connect's or the disconnect's scripts
        with socket.create_connection(("127.0.0.1", port)) as probe:
            kind = "SHARDCHANNELS" if sub == "SSUBSCRIBE" else "CHANNELS"
            probe.sendall(_resp("PUBSUB", kind, f"*{code}*"))
            channel = next(x for x in probe.recv(4096).split(b"\r\n") if code.encode() in x).decode()
    finally:
        roomd.stop()
    drain = socket.create_connection(("127.0.0.1", port))
    drain.sendall(_resp(sub, channel))

    drained = [0]

    def discard() -> None:
        with contextlib.suppress(OSError):
            while chunk := drain.recv(1 << 20):
                drained[0] += len(chunk)

    threading.Thread(target=discard, daemon=True).start()
    try:
        pids = [pid] + ([replica_pid] if replica_pid else [])
        cpu0, t0 = [cpu_seconds(p) for p in pids], time.perf_counter()
        subprocess.run([binary, "-p", str(port), "-c", "50", "-P", "1", "-n", str(requests), "-q", *args],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        seconds = time.perf_counter() - t0
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    finally:
        drain.close()
    result = {
        "cpu_us_per_script": round(cpu[0] / requests * 1e6, 1),
        "per_core_per_s": round(requests / cpu[0]),
        "busy_pct": round(cpu[0] / seconds * 100),
        "published_bytes_per_script": round(drained[0] / requests),  # each replay published its event
    }
    if len(cpu) > 1:
        result["replica_cpu_us_per_script"] = round(cpu[1] / requests * 1e6, 1)
    print(f"  Redis per toggle script: {result}", file=sys.stderr, flush=True)
    return result


def cluster_ready() -> tuple[bool, str]:
    """Whether this build's roomd serves REDIS_CLUSTER_NODES (it refuses it at start otherwise)."""
    sys.path.insert(0, str(ROOT))
    from roomd.domain import redis_target

    if getattr(redis_target, "CLUSTER_READY", True):
        return True, ""
    return False, "this roomd build refuses REDIS_CLUSTER_NODES (roomd.domain.redis_target.CLUSTER_READY is False)"


def run_target(
    label: str, start_roomd: Callable[[], Roomd], redis_pids: list[int], flush: Callable[[], None],
    procs: int, rounds: int, duration: float, replica_pids: list[int] | None = None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    servers = [start_roomd() for _ in range(procs)]
    out: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, str] = {}
    try:
        bases = [s.base for s in servers]
        pids = [p for s in servers for p in s.pids()]
        for _ in range(rounds):
            flush()
            redis0 = {p: cpu_seconds(p) for p in [*redis_pids, *(replica_pids or [])]}
            t0 = time.perf_counter()
            phases = fanout_round(bases, pids, duration)
            seconds = time.perf_counter() - t0
            redis_pct = [(cpu_seconds(p) - redis0[p]) / seconds * 100 for p in redis_pids]
            replicas_pct = sum((cpu_seconds(p) - redis0[p]) / seconds * 100 for p in replica_pids or [])
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
                        "replicas_cpu_pct": replicas_pct,
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

    scripts: dict[str, dict[str, Any]] = {}
    redis = Redis()
    try:
        for n in procs:
            results |= run_target("one Redis", lambda: Roomd(redis.url), [redis.process.pid], redis.flush, n,
                                  args.rounds, args.duration)  # fmt: skip
        redis.flush()
        scripts["one Redis"] = script_cost(lambda: Roomd(redis.url), single=redis)
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
            replicas = [n.process.pid for n in cluster.nodes if n not in masters and n.process is not None]

            def flush() -> None:
                for m in masters:
                    with m.client() as c:
                        c.flushdb()

            def start() -> Roomd:
                return Roomd("", REDIS_CLUSTER_NODES=cluster.startup_nodes)

            for n in procs:
                results |= run_target("cluster (3 masters)", start, pids, flush, n, args.rounds, args.duration,
                                      replicas)  # fmt: skip
            flush()
            scripts["cluster master (with its replica)"] = script_cost(start, cluster=cluster)
        finally:
            cluster.cleanup()

    print(f"\nfan-out, 100 rooms x 10 members, medians of {args.rounds} rounds x {args.duration:.0f} s "
          f"({os.cpu_count()} cores, load generator on the same machine)\n")  # fmt: skip
    print(f"{'target':44s} {'deliveries/s':>12s} {'p50 ms':>7s} {'p99 ms':>7s} {'roomd cpu':>9s}  redis cpu (masters)")
    for name, r in results.items():
        if "failed" in r:
            print(f"{name:44s} FAILED: {r['failed']}")
            continue
        redis_cpu = f"{r['redis_cpu_pct_sum']:.0f}%" + (
            f" (max {r['redis_cpu_pct_max']:.0f}%) + replicas {r['replicas_cpu_pct']:.0f}%"
            if r["redis_cpu_pct_sum"] != r["redis_cpu_pct_max"]
            else ""
        )
        print(f"{name:44s} {r['rate']:>12.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
              f"{r['roomd_cpu_pct']:>8.0f}%  {redis_cpu}")  # fmt: skip
    if scripts:
        print("\nRedis CPU per room:toggle_lock script, replayed by redis-benchmark (50 connections, one at a time):")
        for name, r in scripts.items():
            extra = f", its replica {r['replica_cpu_us_per_script']} µs" if r.get("replica_cpu_us_per_script") else ""
            print(f"  {name:36s} {r['cpu_us_per_script']} µs/script ({r['per_core_per_s']}/s per core){extra}")
    if not ready:
        print(f"(cluster rows skipped: {why})")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("cluster-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps({"results": results, "scripts": scripts, "cluster_ready": ready, "rounds": args.rounds,
                                "duration": args.duration, "cpus": os.cpu_count()}, indent=2))  # fmt: skip
    print(f"\nresults: {Path(path).relative_to(ROOT)}  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
