"""HTTP scenarios driven by wrk (C, from Debian's packages) when it is installed.

A Python load generator on the same two cores measures itself as much as
roomd; wrk needs a fraction of a core for the same load, so the numbers are
roomd's. Without wrk the Python load generator is used (and the report says so).

Accounting: wrk's own ``Requests/sec`` counts every response, a 400 ``ROOM_FULL``
as much as a 201. Each script here therefore has a ``response`` hook that sorts
responses into 2xx, ``ROOM_FULL`` and other failures (per wrk thread), and a
``done`` hook that prints the sums; the rate is 2xx responses per second only.
wrk's latency percentiles still cover every response (wrk cannot split them):
a run with failures says so in the table's error column.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.servers import cpu_seconds

# Shared by every script: per-thread counters (each wrk thread has its own Lua state; ``done``
# runs in the main state and reads them with thread:get).
ACCOUNTING = """
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
ok, full, other = 0, 0, 0
function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif body and string.find(body, "ROOM_FULL", 1, true) then
    full = full + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local o, f, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); f = f + t:get("full"); x = x + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("ACCOUNTING ok=%d full=%d other=%d socket=%d duration_us=%d\\n",
    o, f, x, e.connect + e.read + e.write + e.timeout, summary.duration))
end
"""
JOIN_SCRIPT = """
local codes = {%s}
function init(args)
  i = tid
end
request = function()
  i = i + %d
  local code = codes[(i %% #codes) + 1]
  return wrk.format("POST", "/rooms/" .. code .. "/join", {["Content-Type"] = "application/json"},
                    '{"displayName":"bench"}')
end
"""
CREATE_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"displayName":"bench"}'
wrk.headers["Content-Type"] = "application/json"
"""
GET_SCRIPT = """
local codes = {%s}
request = function()
  return wrk.format("GET", "/rooms/" .. codes[math.random(#codes)])
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run(base: str, kind: str, codes: list[str], duration: float, pids: list[int], connections: int = 50,
        threads: int = 2) -> dict[str, float]:  # fmt: skip
    if kind == "create":
        script, path = CREATE_SCRIPT, "/rooms"
    elif kind == "join":
        slots = [c for c in codes for _ in range(9)]
        script, path = JOIN_SCRIPT % (",".join(f'"{c}"' for c in slots), threads), "/"
    else:
        script, path = GET_SCRIPT % ",".join(f'"{c}"' for c in codes), "/"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(ACCOUNTING + script)
    before, t0 = sum(cpu_seconds(p) for p in pids), time.perf_counter()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", f.name,
         base + path],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout  # fmt: skip
    cpu = (sum(cpu_seconds(p) for p in pids) - before) / (time.perf_counter() - t0) * 100
    Path(f.name).unlink()
    return {**parse(out), "roomd_cpu_pct": cpu}


def parse(out: str) -> dict[str, float]:
    """wrk's output (with the ACCOUNTING line of our ``done`` hook) -> rate of 2xx, failures apart."""
    acc = re.search(r"ACCOUNTING ok=(\d+) full=(\d+) other=(\d+) socket=(\d+) duration_us=(\d+)", out)
    if acc is None:
        raise ValueError("wrk output without the ACCOUNTING line (did the done hook run?)")
    ok, full, other, socket_errors, micros = (int(x) for x in acc.groups())
    seconds = micros / 1e6
    return {
        "rate": ok / seconds if seconds else 0.0,
        "p50_ms": _percentile(out, "50%"),
        "p99_ms": _percentile(out, "99%"),
        # every request that did not succeed: non-2xx answers (ROOM_FULL included) and socket errors
        "errors": float(full + other + socket_errors),
        "room_full": float(full),
        "non_2xx": float(full + other),
        "socket_errors": float(socket_errors),
        "responses": float(ok + full + other),
        "offered": (ok + full + other) / seconds if seconds else 0.0,
    }


def _percentile(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", out, re.M)
    return _ms(match.group(1)) if match else float("nan")


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]
