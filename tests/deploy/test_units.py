"""Deployment artefacts: systemd units, the container image, Compose, readiness notification."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.notify import NotifySocket
from tests.support.processes import ROOT, RoomdProcess, free_port

ROOMD_BIN = Path(sys.executable).with_name("roomd")


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is required in CI (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    return found


def _unit(name: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (all sections merged; repeated keys kept)."""
    values: dict[str, list[str]] = {}
    for line in (ROOT / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.parametrize(
    ("source", "instance"), [("roomd.service", "roomd.service"), ("roomd@.service", "roomd@3001.service")]
)
def test_units_pass_systemd_analyze_verify(source: str, instance: str, tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    # verify checks that ExecStart's binary exists: point it at this checkout's installed roomd
    # (the units' own path, /opt/roomd/venv, exists only on a deployed host).
    text = (ROOT / "systemd" / source).read_text().replace("/opt/roomd/venv/bin/roomd", str(ROOMD_BIN))
    (tmp_path / instance).write_text(text)
    result = subprocess.run([analyze, "verify", str(tmp_path / instance)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "roomd" not in result.stderr.lower() or not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("name", ["roomd.service", "roomd@.service"])
def test_units_are_notify_restartable_and_sandboxed(name: str) -> None:
    unit = _unit(name)
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]  # the --workers supervisor alone notifies
    assert unit["EnvironmentFile"] == ["/etc/roomd/roomd.env"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # configuration errors: no restart loop
    watchdog = int(re.fullmatch(r"(\d+)s", unit["WatchdogSec"][0]).group(1))
    assert watchdog * 1000 > 2 * 5_000 + 5_000  # above 2 x the default REDIS_COMMAND_TIMEOUT, with margin
    stop = int(re.fullmatch(r"(\d+)s", unit["TimeoutStopSec"][0]).group(1))
    assert stop * 1000 > 10_000  # above the default SHUTDOWN_TIMEOUT_MS
    assert int(unit["LimitNOFILE"][0]) >= 65536
    for key in ("DynamicUser", "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictNamespaces"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert unit["CapabilityBoundingSet"] == [""]


def test_template_runs_one_instance_per_port() -> None:
    assert _unit("roomd@.service")["ExecStart"] == ["/opt/roomd/venv/bin/roomd --port %i"]


def test_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis, roomd = compose["services"]["redis"], compose["services"]["roomd"]
    assert redis["image"].startswith("redis:")
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert roomd["build"] == "."
    assert roomd["depends_on"]["redis"]["condition"] == "service_healthy"
    assert roomd["env_file"] == ".env"
    assert roomd["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert roomd["environment"]["ROOMD_ENV"] == "production"
    assert "3000:3000" in roomd["ports"]
    grace = int(re.fullmatch(r"(\d+)s", roomd["stop_grace_period"]).group(1))
    assert grace * 1000 > 10_000


def test_dockerfile() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = {line.split()[0]: line for line in lines if line and not line.startswith("#") and line[0].isupper()}
    assert instructions["ENTRYPOINT"] == 'ENTRYPOINT ["roomd"]'
    assert instructions["USER"] not in ("USER root", "USER 0")
    assert instructions["EXPOSE"] == "EXPOSE 3000"
    assert "/health" in (ROOT / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]
    assert "ROOMD_ENV=production" in (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_readiness_and_stopping_are_notified(spawn_roomd, workers: str) -> None:
    """More in tests/e2e/test_process_lifecycle.py: READY waits for Redis, the watchdog, failures."""
    sock = NotifySocket()
    try:
        server: RoomdProcess = spawn_roomd(wait=False, NOTIFY_SOCKET=sock.path, WORKERS=workers, PORT=str(free_port()))
        ready = await asyncio.to_thread(sock.next_state)
        assert ready.state == b"READY=1" and ready.pid == server.process.pid  # NotifyAccess=main
        server.wait_healthy()  # ready means listening and able to answer
        server.signal(signal.SIGTERM)
        stopping = await asyncio.to_thread(sock.next_state)
        assert stopping.state == b"STOPPING=1" and stopping.pid == server.process.pid
        assert await asyncio.to_thread(server.process.wait, 20) == 0
    finally:
        sock.close()
