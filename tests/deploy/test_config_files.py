"""Shipped configuration: .env.example tells the truth, deploy/nginx.conf keeps /metrics internal."""

from __future__ import annotations

import dataclasses
import re
import urllib.request
from collections.abc import Iterator

import pytest

from roomd import config
from tests.support import nginx
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
def proxy(roomd: RoomdProcess) -> Iterator[int]:
    """deploy/nginx.conf run for real in front of the shared roomd (TLS replaced by plain HTTP)."""
    port = free_port()
    conf = NGINX_CONF.read_text()
    conf = conf.replace("server 127.0.0.1:3000;", f"server 127.0.0.1:{roomd.port};")
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port};")
    conf = re.sub(r"^\s*ssl_certificate(_key)? .*$", "", conf, flags=re.M)
    with nginx.running(conf, port):
        yield port


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "//metrics", "/./metrics", "/metrics?x=1"])
def test_nginx_answers_metrics_to_allowed_addresses_only(proxy: int, path: str) -> None:
    assert nginx.status(proxy, path, "127.0.0.2") == 403  # any address not allowed (loopback, but not 127.0.0.1)
    if path in ("/metrics", "/metrics?x=1"):
        assert nginx.status(proxy, path, "127.0.0.1") == 200
    assert nginx.status(proxy, "/health", "127.0.0.2") == 200  # the rest of roomd is public
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy}/health", timeout=10) as response:
        assert response.status == 200
