"""HTTP scenarios driven by wrk (C, from Debian's packages) when it is installed.

A Python load generator on the same two cores measures itself as much as
roomd; wrk needs a fraction of a core for the same load, so the numbers are
roomd's. Without wrk the Python load generator is used (and the report says so).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.servers import cpu_seconds

JOIN_SCRIPT = """
local codes = {%s}
local threads, counter = 0, 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
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
        f.write(script)
    before, t0 = sum(cpu_seconds(p) for p in pids), time.perf_counter()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", f.name,
         base + path],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout  # fmt: skip
    cpu = (sum(cpu_seconds(p) for p in pids) - before) / (time.perf_counter() - t0) * 100
    Path(f.name).unlink()
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "errors": float(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0.0,
        "offered": 0.0,
        "roomd_cpu_pct": cpu,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
