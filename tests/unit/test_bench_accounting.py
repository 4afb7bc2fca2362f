"""The benchmark's accounting (bench/): throughput counts successes only; paced latency starts at the schedule.

These check the load generator's bookkeeping, not roomd: a refused request or
a lost event must never raise a throughput figure, and a generator that sends
late must not make latencies look shorter.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bench import gamerelay, wrk
from bench.__main__ import summarize
from bench.audience import tally_exact
from bench.scenarios import Member, paced_latencies
from bench.wsclient import client_frame, split_frames

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:1/
  2 threads and 50 connections
  Latency Distribution
     50%   23.60ms
     75%   25.00ms
     90%   26.00ms
     99%    1.20s
  6000 requests in 3.00s, 1.2MB read
  Non-2xx or 3xx responses: 1000
Requests/sec:   2000.00
ACCOUNTING ok=5000 full=900 other=100 socket=7 duration_us=3000000
"""


def test_wrk_rate_counts_2xx_only_and_reports_failures_apart() -> None:
    result = wrk.parse(WRK_OUTPUT)
    assert result["rate"] == pytest.approx(5000 / 3)  # not wrk's 2,000 Requests/sec
    assert result["room_full"] == 900
    assert result["non_2xx"] == 1000
    assert result["socket_errors"] == 7
    assert result["errors"] == 1007
    assert result["p50_ms"] == pytest.approx(23.6)
    assert result["p99_ms"] == pytest.approx(1200.0)


def test_wrk_output_without_accounting_is_refused() -> None:
    with pytest.raises(ValueError):
        wrk.parse(WRK_OUTPUT.replace("ACCOUNTING", "SOMETHING"))


class _Alternating(BaseHTTPRequestHandler):
    """Answers 201, then 400 ROOM_FULL, then 500, in turn."""

    protocol_version = "HTTP/1.1"  # keep-alive, as roomd
    counter = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            n = _Alternating.counter
            _Alternating.counter += 1
        status, body = [(201, {"token": "t"}), (400, {"code": "ROOM_FULL"}), (500, {"code": "INTERNAL"})][n % 3]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # wrk drops its connections mid-request when its time is up


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_scripts_sort_responses() -> None:
    """The Lua hooks really run inside wrk: every response is sorted, the rate is the 201s'."""
    server = _Server(("127.0.0.1", 0), _Alternating)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = wrk.run(f"http://127.0.0.1:{server.server_port}", "create", [], 1, [], connections=2, threads=1)
    finally:
        server.shutdown()
        server.server_close()
    total = result["responses"]
    assert total >= 3
    # one in three of each; the counts differ by at most the connections in flight
    assert abs(result["room_full"] - total / 3) <= 2
    assert abs((result["non_2xx"] - result["room_full"]) - total / 3) <= 2
    assert result["rate"] < result["offered"]


def test_summarize_counts_only_successes() -> None:
    results = [
        {"count": 90, "elapsed": 1.0, "errors": 10, "room_full": 4, "sent": 100, "latencies": [0.01] * 90, "cpu": 50},
        {"count": 80, "elapsed": 2.0, "errors": 20, "room_full": 0, "sent": 100, "latencies": [0.02] * 80, "cpu": 70},
    ]
    summary = summarize(results)
    assert summary["rate"] == pytest.approx(170 / 2.0)
    assert summary["errors"] == 30
    assert summary["room_full"] == 4
    assert summary["offered"] == pytest.approx(200 / 2.0)


def test_paced_summary_reports_the_rate_achieved() -> None:
    result = {"count": 10, "elapsed": 4.0, "errors": 0, "sent": 150, "latencies": [0.001] * 10, "cpu": 10,
              "target_rate": 100, "send_span": 3.0, "send_lags": [0.0] * 99 + [0.5]}  # fmt: skip
    summary = summarize([result])
    assert summary["target_rate"] == 100
    assert summary["sent_rate"] == pytest.approx(50)  # the generator managed 150 sends in 3 s, not 100/s
    assert summary["send_lag_p99_ms"] == pytest.approx(500)


def test_paced_latency_starts_at_the_scheduled_time() -> None:
    schedule = [10.0, 10.1, 10.2]
    # the generator sent the second toggle late; the host's stream: ok, ok, ok
    receipts = [[10.001, 10.25, 10.201], [10.002, 10.26, 10.202]]
    latencies = paced_latencies(schedule, [True, True, True], receipts)
    assert sorted(latencies) == pytest.approx(sorted([0.001, 0.15, 0.001, 0.002, 0.16, 0.002]))


def test_paced_latency_skips_refused_toggles() -> None:
    """A refused toggle (error:room) has no event: the next event belongs to the next toggle."""
    schedule = [1.0, 2.0, 3.0]
    latencies = paced_latencies(schedule, [True, False, True], [[1.01, 3.02]])
    assert latencies == pytest.approx([0.01, 0.02])


def test_paced_latency_with_outcomes_still_unknown() -> None:
    assert paced_latencies([1.0, 2.0], [True], [[1.5, 2.5]]) == pytest.approx([0.5, 0.5])


class _Recorder(Member):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[str] = []

    def send(self, text: str) -> None:
        self.frames.append(text)


def test_paced_game_message_carries_its_scheduled_time() -> None:
    phase = gamerelay._Phase(1.0, acks=False)
    player = _Recorder()
    gamerelay._player_message(phase, player, 3, scheduled=12.5)
    frame = json.loads(player.frames[0])
    assert frame["data"]["data"] == {"p": 3, "t": 12.5}
    assert phase.sent == 1 and len(phase.send_lags) == 1


def test_viewer_frames_are_split_whole_and_masked_frames_round_trip() -> None:
    """The audience's epoll loop reads raw bytes: frames are taken off whole, a partial one waits."""
    first, second = b'{"event":"a"}', b"x" * 200  # a 7-bit and a 16-bit length
    wire = bytearray(bytes([0x81, len(first)]) + first + bytes([0x81, 126, 0, 200]) + second + bytes([0x89, 4]) + b"1")
    assert split_frames(wire) == [(1, first), (1, second)]
    assert wire == bytearray(b"\x89\x041")  # the ping waits for the rest of its payload
    wire += b"234"
    assert split_frames(wire) == [(9, b"1234")] and not wire
    frame = client_frame(0x1, second)
    assert frame[:4] == bytes([0x81, 0xFE, 0, 200])
    mask, body = frame[4:8], frame[8:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == second


def test_audience_tally_is_exact_only_when_every_choice_and_the_total_match() -> None:
    acked = {"red": 3, "blue": 2}
    assert tally_exact({"pollId": "p", "counts": {"red": 3, "blue": 2, "green": 0}, "votes": 5}, acked)
    assert not tally_exact({"pollId": "p", "counts": {"red": 3, "blue": 1}, "votes": 4}, acked)
    assert not tally_exact({"pollId": "p", "counts": {"red": 3, "blue": 2}, "votes": 6}, acked)
    assert not tally_exact({"pollId": "p"}, acked)  # poll:closed without counts (not the host's view)
    assert not tally_exact({"error": "no poll:closed within 10 s"}, acked)
