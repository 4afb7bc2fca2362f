"""Logs (request ids, JSON format, no secrets) and Prometheus metrics."""

from __future__ import annotations

import json

from tests.support.clients import Api, Socket, http
from tests.support.processes import TEST_SECRET, RoomdProcess


async def test_logs_never_contain_tokens_or_the_secret(spawn_roomd) -> None:
    server: RoomdProcess = spawn_roomd(LOG_LEVEL="DEBUG", LOG_FORMAT="json")
    api = Api(server.http)
    host = await api.create("Ana")
    s = await Socket.connect(server.ws, host["token"], query=True)
    await s.expect("room:state")
    await s.send("room:dance")
    await s.expect("error:room")
    bad = await Socket.connect(server.ws, host["token"] + "x", query=True)
    assert await bad.closed() == 4401
    await http(server.http, "GET", f"/rooms/{host['roomCode']}?token={host['token']}")
    await api.rejoin(host["roomCode"], host["token"])
    s.close()
    server.stop()
    logs = server.logs()
    assert host["token"] not in logs
    assert host["token"].split(".")[2] not in logs  # not even the signature
    assert TEST_SECRET not in logs
    assert "token=REDACTED" in logs
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    access = [e for e in lines if e["logger"] == "roomd.access"]
    assert access and all(e["requestId"] and e["level"] for e in access)
    assert any(e["msg"].startswith("POST /rooms 201") for e in access)


async def test_request_id_is_echoed(api: Api) -> None:
    r = await http(api.base, "GET", "/health", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = await http(api.base, "GET", "/nope", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["X-Request-Id"] and r.headers["X-Request-Id"] != "bad id with spaces"


async def test_metrics(api: Api, roomd: RoomdProcess) -> None:
    host = await api.create("Ana")
    s = await Socket.connect(roomd.ws, host["token"])
    await s.expect("room:state")
    await s.send("room:toggle_lock")
    await s.expect("room:lock_toggled")
    r = await http(api.base, "GET", "/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = r.body
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and line[0] != "#"}
    assert samples["roomd_open_sockets"] >= 1
    assert samples["roomd_events_delivered_total"] >= 1
    assert samples["roomd_bus_events_total"] >= 1
    assert samples["roomd_bus_reconnects_total"] == 0
    assert 'roomd_http_request_duration_seconds_count{method="POST",route="/rooms",status="2xx"}' in samples
    assert "roomd_rate_limited_total" in text and "roomd_redis_errors_total" in text


async def test_metrics_can_be_disabled(spawn_roomd) -> None:
    server = spawn_roomd(METRICS_ENABLED="false")
    r = await http(server.http, "GET", "/metrics")
    assert r.status == 404 and r.body["code"] == "NOT_FOUND"
