"""Shipped configuration: .env.example tells the truth, deploy/nginx.conf keeps /metrics internal."""

from __future__ import annotations

import dataclasses
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomd import config
from tests.support.processes import ROOT, RoomdProcess, free_port

ENV_EXAMPLE = ROOT / ".env.example"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def _assignments(text: str) -> dict[str, str]:
    """The variables .env.example really sets (commented lines are examples)."""
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not an assignment: {line!r}"
            found[name.strip()] = value.strip()
    return found


def _variables() -> set[str]:
    """Every variable roomd's configuration reads."""
    source = (ROOT / "roomd" / "config.py").read_text()
    return set(re.findall(r'take\("([A-Z_]+)"', source)) | {"REDIS_URL", "REDIS_HOST", "REDIS_PORT", "JWT_SECRET"}


def _comparable(settings: config.Settings) -> dict[str, object]:
    values = dataclasses.asdict(settings)
    for secret in ("jwt_secret", "jwt_secret_ephemeral"):
        values.pop(secret)
    return values


def test_env_example_sets_only_defaults() -> None:
    """Its header promises that every value shown is the default: copying it changes nothing."""
    assigned = _assignments(ENV_EXAMPLE.read_text())
    assert "ROOMD_ENV" not in assigned and "REDIS_URL" not in assigned  # examples, commented
    assert assigned.get("JWT_SECRET", "") == ""
    assert _comparable(config.from_env(assigned)) == _comparable(config.from_env({}))


def test_env_example_and_readme_list_every_variable() -> None:
    text = ENV_EXAMPLE.read_text()
    readme = (ROOT / "README.md").read_text()
    for name in sorted(_variables()):
        assert re.search(rf"^#? ?{name}=", text, re.M), f"{name} is not in .env.example"
        assert f"`{name}`" in readme, f"{name} is not in README's configuration table"


# --- nginx ------------------------------------------------------------------------------


def _metrics_block(conf: str) -> str:
    match = re.search(r"location \^~ /metrics \{(.*?)\n    \}", conf, re.S)
    assert match, "deploy/nginx.conf has no `location ^~ /metrics` block"
    return match[1]


def test_nginx_keeps_metrics_internal() -> None:
    block = _metrics_block(NGINX_CONF.read_text())
    rules = re.findall(r"^\s*(allow|deny)\s+([^;]+);", block, re.M)
    assert rules[-1] == ("deny", "all")  # everything not allowed above is refused
    for kind, address in rules[:-1]:
        assert kind == "allow" and address in ("127.0.0.1", "::1"), "only loopback is allowed by default"


def test_nginx_conf_keeps_query_strings_out_of_logs() -> None:
    conf = NGINX_CONF.read_text()
    log_format = re.search(r"log_format roomd ([^;]+);", conf)
    assert log_format and "$request_uri" not in log_format[1] and "$args" not in log_format[1]
    assert "$request " not in log_format[1] and '$request"' not in log_format[1]


@pytest.fixture
def nginx(roomd: RoomdProcess) -> Iterator[int]:
    """deploy/nginx.conf run for real in front of the shared roomd (TLS replaced by plain HTTP)."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        pytest.skip("nginx is not installed")
    work = Path(tempfile.mkdtemp(prefix="roomd-nginx-"))
    port = free_port()
    conf = NGINX_CONF.read_text()
    conf = conf.replace("server 127.0.0.1:3000;", f"server 127.0.0.1:{roomd.port};")
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port};")
    conf = re.sub(r"^\s*ssl_certificate(_key)? .*$", "", conf, flags=re.M)
    conf = conf.replace("/var/log/nginx/roomd.access.log", str(work / "access.log"))
    temp = " ".join(f"{kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(
        f"pid {work / 'nginx.pid'};\nerror_log {work / 'error.log'};\nevents {{}}\nhttp {{\n{temp}\n{conf}\n}}\n"
    )
    check = subprocess.run([binary, "-t", "-p", str(work), "-c", str(work / "nginx.conf")], capture_output=True,
                           text=True, timeout=30)  # fmt: skip
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([binary, "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


def _get(port: int, path: str, source: str) -> int:
    """Status of GET ``path`` through nginx, sent from the local address ``source``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: rooms.example.com\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split()[1])


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "//metrics", "/./metrics", "/metrics?x=1"])
def test_nginx_answers_metrics_to_allowed_addresses_only(nginx: int, path: str) -> None:
    assert _get(nginx, path, "127.0.0.2") == 403  # any address not allowed (loopback, but not 127.0.0.1)
    if path in ("/metrics", "/metrics?x=1"):
        assert _get(nginx, path, "127.0.0.1") == 200
    assert _get(nginx, "/health", "127.0.0.2") == 200  # the rest of roomd is public
    with urllib.request.urlopen(f"http://127.0.0.1:{nginx}/health", timeout=10) as response:
        assert response.status == 200
