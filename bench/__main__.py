"""``python -m bench``: start a private Redis and roomd, run every scenario, print and save the results.

Every scenario is bounded in time and targets loopback only. Load generators
run as separate processes; on this 2-core machine they compete with roomd for
the CPU, which the report shows (roomd CPU % during each run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import scenarios, wrk
from bench.servers import ROOT, Redis, Roomd, cpu_seconds, raise_fd_limit, rss_bytes

RESULTS = Path(__file__).with_name("results")

# (scenario, unit, target, higher_is_better) — issue 4's targets on this machine.
TARGETS: dict[str, tuple[str, float | None]] = {
    "http-create": ("req/s", 1600),
    "http-join": ("req/s", 2000),
    "http-get": ("req/s", 4000),
    "ws-connect": ("connects/s", 1000),
    "fanout-saturation": ("deliveries/s", 60000),
    "fanout-paced-500": ("deliveries/s", None),
    "fanout-paced-1000": ("deliveries/s", None),
    "fanout-paced-2000": ("deliveries/s", None),
    "fanout-saturation-2procs": ("deliveries/s", None),
    "fanout-paced-2000-2procs": ("deliveries/s", None),
    "fanout-saturation-workers2": ("deliveries/s", None),
    "fanout-paced-2000-workers2": ("deliveries/s", None),
    # issue 11: saturation at least the fan-out scenario's of the same run (see RELATIVE_TARGETS)
    "game-relay-saturation": ("deliveries/s", None),
    "game-relay-saturation-2procs": ("deliveries/s", None),
    # issue 13: the audience (a host broadcast reaching 10,000 viewers, 5/s; 10,000 votes)
    "audience-broadcast": ("deliveries/s", None),
    "audience-broadcast-2procs": ("deliveries/s", None),
    "audience-vote": ("votes/s", None),
    "audience-vote-2procs": ("votes/s", None),
}
P99_TARGETS = {"http-create": 50, "http-join": 50, "fanout-paced-2000": 10, "game-relay-paced-5000": 5,
               "audience-broadcast": 100, "audience-broadcast-2procs": 100}  # fmt: skip
# scenario -> the scenario whose median rate (same run) is its target
RELATIVE_TARGETS = {
    "game-relay-saturation": "fanout-saturation",
    "game-relay-saturation-2procs": "fanout-saturation-2procs",
}
GAME_RATES: list[float | None] = [None, 1000, 5000]  # player messages/s (None = closed loop); 1,000: below the knee


def loadgen(name: str, params: dict[str, Any], procs: int = 1, timeout: float = 300) -> list[dict[str, Any]]:
    """Run ``procs`` load-generator processes in parallel; their JSON results."""
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", name, json.dumps(params)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(procs)
    ]
    results = []
    for proc in running:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in running:
                other.kill()  # its own children (audience viewers) end when their stdin closes
            raise
        if proc.returncode != 0:
            raise SystemExit(f"bench: load generator {name} failed ({proc.returncode})")
        lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        results.append(next(r for r in lines if r.get("stage") == "result"))
    return results


HTTP_KINDS = ("create", "join", "get")


def http_plan(base: str, kind: str, duration: float) -> Any:
    """wrk when installed (it leaves the CPU to roomd), else two Python load generators."""

    def run(pids: list[int]) -> dict[str, float]:
        if not wrk.available():
            params = {"base": base, "kind": kind, "clients": 25, "duration": duration, "pids": pids}
            return summarize(loadgen("http", params, 2))
        # join: enough free slots for 6,000 joins/s (a slot used twice answers ROOM_FULL: reported, not counted)
        rooms = {"create": 0, "join": int(6000 * duration / 9) + 50, "get": 100}[kind]
        codes = [r["roomCode"] for r in asyncio.run(scenarios._create_rooms(base, rooms))] if rooms else []
        return wrk.run(base, kind, codes, duration, pids)

    return run


def phase_name(kind: str, rate: float | None, suffix: str) -> str:
    """``fanout-saturation``, ``game-relay-paced-5000-2procs``, ... (the names ``--only`` matches)."""
    return (f"{kind}-saturation" if rate is None else f"{kind}-paced-{rate}") + suffix


def fanout_plan(bases: list[str], duration: float, rates: list[float | None], suffix: str) -> Any:
    """One population of 100 rooms x 10 sockets per round, serving every phase in ``rates``."""

    def run(pids: list[int]) -> dict[str, dict[str, float]]:
        params = {"bases": bases, "rooms": 100, "duration": duration, "rates": rates, "pids": pids}
        phases = loadgen("fanout", params)[0]["phases"]
        names = [phase_name("fanout", r, suffix) for r in rates]
        return {name: summarize([phase]) for name, phase in zip(names, phases, strict=True)}

    return run


def game_relay_plan(bases: list[str], duration: float, rates: list[float | None], suffix: str, redis_pid: int) -> Any:
    """issue 11's game-relay: one population of 100 rooms x 10 sockets per round, every phase in ``rates``."""

    def run(pids: list[int]) -> dict[str, dict[str, float]]:
        params = {"bases": bases, "rooms": 100, "duration": duration, "rates": rates, "pids": pids,
                  "redis_pid": redis_pid}  # fmt: skip
        phases = loadgen("game-relay", params)[0]["phases"]
        names = [phase_name("game-relay", r, suffix) for r in rates]
        for name, phase in zip(names, phases, strict=True):
            if phase.get("first_error"):
                print(f"  {name}: first error: {phase['first_error']}", file=sys.stderr)
        return {name: summarize([phase]) for name, phase in zip(names, phases, strict=True)}

    return run


AUDIENCE_EXTRAS = (
    "viewers", "viewers_failed", "admit_seconds", "connect_seconds", "audience_count_at_host", "missing_deliveries",
    "short_viewers", "error_frames", "redis_cmds_per_s", "broadcasts", "votes_acked", "tally_votes", "tally_exact",
    "close_to_tally_ms", "answers_after_window_ms", "host_tallies", "host_tallies_per_s", "unanswered",
)  # fmt: skip


def audience_plan(bases: list[str], args: Any, suffix: str, redis: Redis) -> Any:
    """issue 13's audience: one room, ``--audience-viewers`` viewers, a broadcast phase and a vote phase."""

    def run(pids: list[int]) -> dict[str, dict[str, float]]:
        params = {"bases": bases, "viewers": args.audience_viewers, "procs": args.audience_procs,
                  "duration": args.audience_duration, "rate": args.audience_rate, "window": args.vote_window,
                  "redis_url": redis.url, "pids": pids, "redis_pid": redis.process.pid,
                  "as_members": args.audience_as_members}  # fmt: skip
        try:
            outcome = loadgen("audience", params, timeout=900)[0]
        except (SystemExit, subprocess.TimeoutExpired) as exc:  # the rest of the run keeps its results
            print(f"  audience{suffix}: FAILED, no figures this round: {exc}", file=sys.stderr, flush=True)
            return {}
        if "skipped" in outcome:
            print(f"  audience{suffix}: skipped: {outcome['skipped']}", file=sys.stderr, flush=True)
            return {}
        summaries = {}
        for kind, phase in zip(("broadcast", "vote"), outcome["phases"], strict=False):
            name = f"audience-{kind}{suffix}"
            summary = summarize([phase])
            summary.update({k: float(phase[k]) for k in AUDIENCE_EXTRAS if k in phase})
            if "last_viewer_latencies" in phase:
                summary["last_viewer_p50_ms"] = percentile(phase["last_viewer_latencies"], 0.50) * 1000
                summary["last_viewer_p99_ms"] = percentile(phase["last_viewer_latencies"], 0.99) * 1000
            for note in ("first_failure", "first_error"):
                if phase.get(note):
                    print(f"  {name}: {note}: {phase[note]}", file=sys.stderr)
            if phase.get("redis_top"):
                top = ", ".join(f"{k} {v:.0f}/s" for k, v in phase["redis_top"].items())
                print(f"  {name}: Redis commands: {top}", file=sys.stderr)
            summaries[name] = summary
        return summaries

    return run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(results: list[dict[str, Any]]) -> dict[str, float]:
    """Merge the load generators' results of one phase.

    ``count`` is successes only (2xx responses, complete connects, delivered events): ``rate`` is
    throughput; failures are ``errors`` (with ``room_full`` apart for HTTP), never throughput.
    Paced phases also give ``target_rate`` (what the schedule asked), ``offered`` (sends/s the
    generator achieved) and ``send_lag_p99_ms`` (how late it sent, which the latencies include:
    they are measured from each message's scheduled send time).
    """
    latencies = [x for r in results for x in r["latencies"]]
    elapsed = max(r["elapsed"] for r in results)
    summary = {
        "rate": sum(r["count"] for r in results) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": sum(r.get("errors", 0) for r in results),
        "room_full": sum(r.get("room_full", 0) for r in results),
        "offered": sum(r.get("sent", 0) for r in results) / elapsed if elapsed else 0.0,
        "roomd_cpu_pct": statistics.mean(r["cpu"] for r in results),
    }
    if any(r.get("error_frames") for r in results):
        summary["error_frames"] = sum(r.get("error_frames", 0) for r in results)
    if results[0].get("target_rate"):
        lags = [x for r in results for x in r.get("send_lags", [])]
        summary["target_rate"] = float(sum(r["target_rate"] for r in results))
        summary["sent_rate"] = sum(r.get("sent", 0) / r["send_span"] for r in results)
        summary["send_lag_p99_ms"] = percentile(lags, 0.99) * 1000
    if "rt_latencies" in results[0]:  # game-relay: the player's round trip
        round_trips = [x for r in results for x in r["rt_latencies"]]
        summary["rt_p50_ms"] = percentile(round_trips, 0.50) * 1000
        summary["rt_p99_ms"] = percentile(round_trips, 0.99) * 1000
    if "machine_cpu" in results[0]:  # game-relay, audience: the load generator's own CPU, Redis's, the rest
        summary["loadgen_cpu_pct"] = statistics.mean(r["loadgen_cpu"] for r in results)
        summary["redis_cpu_pct"] = statistics.mean(r["redis_cpu"] for r in results)
        # whatever else ran on the machine meanwhile (noise) = machine - roomd - load generator - Redis
        summary["other_cpu_pct"] = statistics.mean(
            r["machine_cpu"] - r["cpu"] - r["loadgen_cpu"] - r["redis_cpu"] for r in results
        )
    return summary


def idle_sockets(redis: Redis, count: int, settle: float) -> dict[str, float]:
    server = Roomd(redis.url)
    try:
        pid = server.pids()[0]
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", "idle", json.dumps({"base": server.base, "count": count})],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        json.loads(proc.stdout.readline())  # members-ready
        time.sleep(1)
        rss_before = rss_bytes(pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        ready = json.loads(proc.stdout.readline())
        time.sleep(2)
        rss_after = rss_bytes(pid)
        cpu0 = cpu_seconds(pid)
        time.sleep(settle)
        cpu_rest = (cpu_seconds(pid) - cpu0) / settle * 100
        proc.stdin.write("done\n")
        proc.stdin.flush()
        proc.wait(60)
        sockets = ready["sockets"]
        return {
            "sockets": sockets,
            "rss_per_socket_kib": (rss_after - rss_before) / max(1, sockets) / 1024,
            "rss_total_mib": rss_after / 2**20,
            "cpu_at_rest_pct": cpu_rest,
            "connect_rate": sockets / ready["seconds"],
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per scenario")
    parser.add_argument("--only", default="", help="comma-separated scenario name prefixes")
    parser.add_argument("--idle-sockets", type=int, default=10_000)
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="SECONDS",
        help="before each round, wait up to SECONDS for the machine to be idle (shared machines)",
    )  # fmt: skip
    parser.add_argument("--audience-viewers", type=int, default=10_000, help="viewers in the audience room")
    parser.add_argument("--audience-procs", type=int, default=4, help="viewer load-generator processes")
    parser.add_argument("--audience-duration", type=float, default=5.0, help="seconds of host broadcasts")
    parser.add_argument("--audience-rate", type=float, default=5.0, help="host broadcasts per second")
    parser.add_argument("--vote-window", type=float, default=5.0, help="seconds over which the viewers vote")
    parser.add_argument(
        "--audience-as-members", action="store_true",
        help="check the audience load generator against a roomd without the audience: members instead of viewers "
        "(join, game:send to all; no vote phase; keep --audience-viewers to ~1,000: every connect is broadcast)",
    )  # fmt: skip
    args = parser.parse_args()
    QUIET["wait"] = args.wait_quiet
    raise_fd_limit()
    wanted = [p for p in args.only.split(",") if p]
    if wanted and set(wanted) <= {"costs", "cluster"}:  # bench/costs.py, bench/cluster.py (docs/scaling.md)
        for name in wanted:  # not part of a default run: each takes its own 1.5-2 minutes
            subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=True)
        return

    def selected(name: str) -> bool:
        return not wanted or any(name.startswith(p) or p.startswith(name) for p in wanted)

    def phases(kind: str, rates: list[float | None], suffix: str = "") -> list[float | None]:
        """The phases of a population-sharing scenario that --only asks for (all by default)."""
        return [r for r in rates if not wanted or any(phase_name(kind, r, suffix).startswith(p) for p in wanted)]

    redis = Redis()
    rounds: dict[str, list[dict[str, float]]] = {}
    started = time.perf_counter()
    try:
        d = args.duration
        one = Roomd(redis.url)
        try:
            plans: list[tuple[str, Any]] = [(f"http-{kind}", http_plan(one.base, kind, d)) for kind in HTTP_KINDS]
            plans.append(
                (
                    "ws-connect",
                    lambda pids: summarize(
                        loadgen("ws-connect", {"base": one.base, "clients": 25, "duration": d, "pids": pids}, 2)
                    ),
                )
            )
            if fanout_rates := phases("fanout", [None, 500, 1000, 2000]):
                plans.append(("fanout", fanout_plan([one.base], d, fanout_rates, "")))
            if game_rates := phases("game-relay", GAME_RATES):
                plans.append(("game-relay", game_relay_plan([one.base], d, game_rates, "", redis.process.pid)))
            run_plans(plans, one, redis, rounds, args.rounds, selected)
        finally:
            one.stop()
        for label, make, games in (
            ("2procs", lambda: [Roomd(redis.url), Roomd(redis.url)], True),
            ("workers2", lambda: [Roomd(redis.url, workers=2)], False),
        ):
            fanout_rates = phases("fanout", [None, 2000], f"-{label}")
            game_rates = phases("game-relay", [None, GAME_RATES[-1]], f"-{label}") if games else []
            if not fanout_rates and not game_rates:
                continue
            servers = make()
            try:
                bases = [s.base for s in servers]
                plans = []
                if fanout_rates:
                    plans.append(("fanout", fanout_plan(bases, d, fanout_rates, f"-{label}")))
                if game_rates:
                    plans.append(("game-relay", game_relay_plan(bases, d, game_rates, f"-{label}", redis.process.pid)))
                run_plans(plans, servers, redis, rounds, args.rounds, lambda name: True)
            finally:
                for s in servers:
                    s.stop()
        for suffix, processes in (("", 1), ("-2procs", 2)):
            names = [f"audience-{kind}{suffix}" for kind in ("broadcast", "vote")]  # one population: both phases
            if wanted and not any(n.startswith(p) for n in names for p in wanted):
                continue
            env = {"AUDIENCE_MAX": str(args.audience_viewers + 100)}
            if args.audience_as_members:
                env["ROOM_MAX_USERS"] = str(min(10_000, args.audience_viewers + 10))
            servers = [Roomd(redis.url, 1, **env) for _ in range(processes)]
            try:
                plan = [("audience", audience_plan([x.base for x in servers], args, suffix, redis))]
                run_plans(plan, servers, redis, rounds, args.rounds, lambda name: True)
            finally:
                for x in servers:
                    x.stop()
        idle = idle_sockets(redis, args.idle_sockets, 5.0) if selected("idle-sockets") else None
    finally:
        redis.stop()
    report(rounds, idle, time.perf_counter() - started, args)


def report_audience(rows: list[dict[str, Any]]) -> None:
    """issue 13's audience rows: the broadcast's reach and the vote's tally (medians over rounds)."""
    casts = [r for r in rows if r["scenario"].startswith("audience-broadcast")]
    if casts:
        print("\naudience broadcast: latency = receipt at a viewer - the broadcast's scheduled send time")
        print(
            f"{'scenario':30s} {'viewers':>7s} {'deliv./s':>9s} {'expected':>9s} {'last viewer p50':>15s} "
            f"{'p99 ms':>7s} {'roomd µs/deliv.':>15s} {'redis cmd/s':>11s} {'redis cpu':>9s} {'loadgen cpu':>11s} "
            f"{'other cpu':>9s}"
        )
        for r in casts:
            print(
                f"{r['scenario']:30s} {r['viewers']:>7.0f} {r['rate']:>9.0f} {r['viewers'] * r['target_rate']:>9.0f} "
                f"{r['last_viewer_p50_ms']:>15.1f} {r['last_viewer_p99_ms']:>7.1f} "
                f"{r['roomd_cpu_pct'] * 1e4 / max(1.0, r['rate']):>15.1f} {r['redis_cmds_per_s']:>11.0f} "
                f"{r['redis_cpu_pct']:>8.0f}% {r['loadgen_cpu_pct']:>10.0f}% {r['other_cpu_pct']:>8.0f}%"
            )
    votes = [r for r in rows if r["scenario"].startswith("audience-vote")]
    if votes:
        print("\naudience vote: every viewer votes once within the window; the host closes once all are answered")
        print(
            f"{'scenario':30s} {'acked':>6s} {'tally':>6s} {'exact':>5s} {'close->tally ms':>15s} "
            f"{'vote p99 ms':>11s} {'host tallies/s':>14s} {'redis cmd/s':>11s} {'redis cpu':>9s}  target"
        )
        for r in votes:
            ok = r["tally_exact"] == 1 and r["close_to_tally_ms"] <= 1000
            print(
                f"{r['scenario']:30s} {r['votes_acked']:>6.0f} {r['tally_votes']:>6.0f} "
                f"{'yes' if r['tally_exact'] == 1 else 'NO':>5s} {r['close_to_tally_ms']:>15.1f} {r['p99_ms']:>11.1f} "
                f"{r['host_tallies_per_s']:>14.1f} {r['redis_cmds_per_s']:>11.0f} {r['redis_cpu_pct']:>8.0f}%  "
                f"exact, ≤1000 ms {'met' if ok else 'MISSED'}"
            )


QUIET = {"wait": 0.0}  # --wait-quiet


def wait_quiet(limit: float, busy_below: float = 0.15) -> None:
    """Before a round on a shared machine: wait (at most ``limit`` s) until two 1 s samples are idle."""
    if limit <= 0:
        return

    def jiffies() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:8]]
        return sum(fields), fields[3] + fields[4]

    deadline, calm = time.monotonic() + limit, 0
    while time.monotonic() < deadline and calm < 2:
        a = jiffies()
        time.sleep(1)
        b = jiffies()
        calm = calm + 1 if 1 - (b[1] - a[1]) / max(1, b[0] - a[0]) < busy_below else 0
    if calm < 2:
        print(f"  (the machine did not go quiet within {limit:.0f} s: this round is noisy)", file=sys.stderr)


def run_plans(
    plans: list[tuple[str, Any]],
    servers: Any,
    redis: Redis,
    rounds: dict[str, list[dict[str, float]]],
    count: int,
    selected: Any,
) -> None:
    group = servers if isinstance(servers, list) else [servers]
    for name, run in plans:
        if not selected(name):
            continue
        for _ in range(count):
            wait_quiet(QUIET["wait"])
            redis.flush()
            pids = [p for s in group for p in s.pids()]
            outcome = run(pids)
            results = outcome if "rate" not in outcome else {name: outcome}
            for scenario, result in results.items():
                rounds.setdefault(scenario, []).append(result)
                print(
                    f"  {scenario:28s} {result['rate']:>10.0f}/s  p50 {result['p50_ms']:6.1f} ms  "
                    f"p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}",
                    file=sys.stderr,
                    flush=True,
                )


def report(rounds: dict[str, list[dict[str, float]]], idle: dict[str, float] | None, seconds: float, args: Any) -> None:
    rows = []
    medians = {name: statistics.median(r["rate"] for r in results) for name, results in rounds.items()}
    for name, results in rounds.items():
        rates = [r["rate"] for r in results]
        keys = dict.fromkeys(k for r in results for k in r)
        median = {k: statistics.median(r.get(k, 0.0) for r in results) for k in keys}
        unit, target = TARGETS.get(name, ("/s", None))
        if name in RELATIVE_TARGETS and RELATIVE_TARGETS[name] in medians:
            target = medians[RELATIVE_TARGETS[name]]
        p99_target = P99_TARGETS.get(name)
        status = "-"
        if target is not None or p99_target is not None:
            ok = (target is None or median["rate"] >= target) and (p99_target is None or median["p99_ms"] <= p99_target)
            status = "met" if ok else "MISSED"
        rows.append(
            {
                "scenario": name,
                "unit": unit,
                **median,
                "errors_total": sum(r["errors"] for r in results),  # all rounds: one bad round must show
                "room_full_total": sum(r.get("room_full", 0) for r in results),
                "rate_min": min(rates),
                "rate_max": max(rates),
                "target": target,
                "p99_target_ms": p99_target,
                "status": status,
                "rounds": len(results),
            }
        )
    print(
        f"\nroomd benchmark — {platform.node()} ({os.cpu_count()} cores), {args.rounds} rounds x {args.duration}s, "
        f"medians (spread of the rate across rounds)\n"
    )
    print(
        f"{'scenario':30s} {'rate':>10s} {'spread':>17s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} "
        f"{'roomd cpu':>9s}  target"
    )
    for r in rows:
        target = f"≥{r['target']:.0f}" if r["target"] else ""
        if r["p99_target_ms"]:
            target += f" p99≤{r['p99_target_ms']}ms"
        print(
            f"{r['scenario']:30s} {r['rate']:>10.0f} {r['rate_min']:>8.0f}-{r['rate_max']:<8.0f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['errors_total']:>7.0f} {r['roomd_cpu_pct']:>8.0f}%  {target} "
            f"{r['status'] if target else ''}"
        )
    print(
        "(rate = successes only: 2xx responses, complete connects, delivered events; errors = failures in all "
        "rounds: non-2xx answers incl. ROOM_FULL, socket errors, error:room refusals, lost deliveries)"
    )
    if full := [r for r in rows if r.get("room_full_total")]:
        print("ROOM_FULL answers (not counted as throughput): " + ", ".join(
            f"{r['scenario']} {r['room_full_total']:.0f}" for r in full))  # fmt: skip
    paced = [r for r in rows if r.get("target_rate")]
    if paced:
        print("\npaced phases: latencies from each message's scheduled send time")
        print(f"{'scenario':30s} {'scheduled/s':>11s} {'sent/s':>8s} {'send lag p99 ms':>15s}")
        for r in paced:
            behind = "  GENERATOR BEHIND" if r["sent_rate"] < 0.97 * r["target_rate"] else ""
            print(
                f"{r['scenario']:30s} {r['target_rate']:>11.0f} {r['sent_rate']:>8.0f} {r['send_lag_p99_ms']:>15.1f}"
                f"{behind}"
            )
    games = [r for r in rows if "rt_p99_ms" in r]
    if games:
        print("\ngame-relay: 11 deliveries per player message; p50/p99 above = player -> host (game:message)")
        print(
            f"{'scenario':30s} {'messages/s':>10s} {'round trip p50':>15s} {'p99 ms':>8s} {'redis cpu':>9s} "
            f"{'loadgen cpu':>11s} {'other cpu':>9s}"
        )
        for r in games:
            print(
                f"{r['scenario']:30s} {r['offered']:>10.0f} {r['rt_p50_ms']:>15.1f} {r['rt_p99_ms']:>8.1f} "
                f"{r['redis_cpu_pct']:>8.0f}% {r['loadgen_cpu_pct']:>10.0f}% {r['other_cpu_pct']:>8.0f}%"
            )
        print("(other cpu = the rest of the machine meanwhile: other work, i.e. noise; a quiet machine shows ~5%)")
    report_audience(rows)
    if idle:
        print(
            f"\nidle-sockets: {idle['sockets']:.0f} sockets, {idle['rss_per_socket_kib']:.1f} KiB RSS each "
            f"(target ≤ 20), {idle['rss_total_mib']:.0f} MiB total, CPU at rest {idle['cpu_at_rest_pct']:.1f}%, "
            f"opened at {idle['connect_rate']:.0f}/s"
        )
    print(f"\ntotal {seconds:.0f}s")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.write_text(
        json.dumps(
            {
                "machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
                "rounds": args.rounds,
                "duration": args.duration,
                "scenarios": rows,
                "idle": idle,
                "raw": rounds,
            },
            indent=2,
        )
    )
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
