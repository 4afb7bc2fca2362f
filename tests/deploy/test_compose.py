"""docker-compose.cluster.yml and deploy/nginx-cluster.conf (Docker does not run here: parsed and checked).

The Compose file is read as YAML and checked for what would only fail at ``docker
compose up``: the services, the variables roomd is given (each must be one
roomd/config.py reads), the cluster-create command naming the six nodes, addresses
and ports in step with the nginx configuration. The nginx configuration is then
checked by ``nginx -t`` and run for real in front of two roomd processes (the
upstream addresses replaced by theirs): health, /metrics refused, WebSocket upgrade,
and room affinity (sockets that name their room land on one instance).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.support import nginx
from tests.support.clients import Api, Socket
from tests.support.processes import ROOT, RoomdProcess, free_port

COMPOSE = ROOT / "docker-compose.cluster.yml"
NGINX_CONF = ROOT / "deploy" / "nginx-cluster.conf"
REDIS_NODES = [f"redis-{i}" for i in range(1, 7)]
ROOMDS = ["roomd-1", "roomd-2"]


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _config_variables() -> set[str]:
    """Every environment variable name roomd/config.py mentions (what it can read)."""
    return set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', (ROOT / "roomd" / "config.py").read_text()))


def _address(service: dict[str, Any]) -> str:
    return service["networks"]["roomd-cluster"]["ipv4_address"]  # type: ignore[no-any-return]


def _command(service: dict[str, Any]) -> str:
    command = service["command"]
    return " ".join(command) if isinstance(command, list) else str(command)


def test_services() -> None:
    services = _compose()["services"]
    assert set(services) == {*REDIS_NODES, "redis-cluster-init", *ROOMDS, "nginx"}


def test_redis_nodes_are_cluster_nodes_with_fixed_addresses_and_their_own_volume() -> None:
    compose = _compose()
    services = compose["services"]
    subnet = ipaddress.ip_network(compose["networks"]["roomd-cluster"]["ipam"]["config"][0]["subnet"])
    addresses = [_address(s) for s in services.values() if isinstance(s["networks"], dict)]
    assert len(addresses) == len(services) - 1  # all but the one-shot redis-cluster-init
    assert len(set(addresses)) == len(addresses), "two services share an address"
    assert all(ipaddress.ip_address(a) in subnet for a in addresses)
    volumes = set()
    for name in REDIS_NODES:
        node = services[name]
        args = node["command"]
        assert node["image"].startswith("redis:7")  # redis-cli --cluster, SSUBSCRIBE (7.0+)
        assert args[args.index("--cluster-enabled") + 1] == "yes"
        assert args[args.index("--port") + 1] == "6379"
        assert "--cluster-config-file" in args and "--appendonly" in args
        # a shard failing over must not stop the others (README: Running on a Cluster)
        assert args[args.index("--cluster-require-full-coverage") + 1] == "no"
        assert "redis-cli" in " ".join(node["healthcheck"]["test"])
        (volume,) = node["volumes"]
        assert volume.endswith(":/data") and volume.split(":")[0] in compose["volumes"]
        volumes.add(volume)
    assert len(volumes) == 6


def test_cluster_create_lists_the_six_nodes_with_one_replica_each() -> None:
    services = _compose()["services"]
    init = services["redis-cluster-init"]
    command = _command(init)
    create = command[command.index("redis-cli --cluster create") :]
    listed = re.findall(r"(\d+\.\d+\.\d+\.\d+):(\d+)", create)
    assert listed == [(_address(services[name]), "6379") for name in REDIS_NODES]
    assert "--cluster-replicas 1" in create and "--cluster-yes" in create
    assert {name: dep["condition"] for name, dep in init["depends_on"].items()} == dict.fromkeys(
        REDIS_NODES, "service_healthy"
    )
    assert init["restart"] == "no"  # one-shot


def test_roomd_instances_read_only_variables_roomd_knows() -> None:
    services = _compose()["services"]
    known = _config_variables()
    for name in ROOMDS:
        roomd = services[name]
        env = roomd["environment"]
        assert set(env) <= known, f"{name}: variables roomd does not read: {set(env) - known}"
        assert "REDIS_URL" not in env and "REDIS_HOST" not in env  # exclusive with REDIS_CLUSTER_NODES
        assert env["ROOMD_ENV"] == "production"
        for node in env["REDIS_CLUSTER_NODES"].split(","):
            host, port = node.split(":")
            assert host in REDIS_NODES and port == "6379"
        assert env["TRUST_PROXY"] == _address(services["nginx"])
        assert roomd["build"] == "." and roomd["env_file"] == ".env"
        assert roomd["depends_on"] == {"redis-cluster-init": {"condition": "service_completed_successfully"}}
        assert "ports" not in roomd, "roomd's port (and /metrics) stays on the internal network"
        grace = int(re.fullmatch(r"(\d+)s", roomd["stop_grace_period"]).group(1))  # type: ignore[union-attr]
        assert grace * 1000 > 10_000  # longer than the default SHUTDOWN_TIMEOUT_MS drain


def test_the_single_redis_compose_file_also_passes_known_variables() -> None:
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["roomd"]["environment"]
    assert set(env) <= _config_variables()


def test_nginx_service_and_config_point_at_the_two_instances() -> None:
    services = _compose()["services"]
    nginx = services["nginx"]
    assert any(v.startswith("./deploy/nginx-cluster.conf:/etc/nginx/conf.d/") for v in nginx["volumes"])
    assert any(p.endswith(":80") for p in nginx["ports"])
    assert {name: dep["condition"] for name, dep in nginx["depends_on"].items()} == dict.fromkeys(
        ROOMDS, "service_healthy"
    )
    conf = NGINX_CONF.read_text()
    expected = [f"{_address(services[name])}:{services[name]['environment']['PORT']}" for name in ROOMDS]
    for upstream in ("roomd", "roomd_ws"):
        block = re.search(rf"upstream {upstream} \{{(.*?)\}}", conf, re.S)
        assert block, f"no upstream {upstream}"
        assert re.findall(r"^\s*server (\S+)", block[1], re.M) == expected
    assert re.search(r"listen 80;", conf)


def test_nginx_config_keeps_metrics_internal_and_tokens_out_of_logs() -> None:
    conf = NGINX_CONF.read_text()
    block = re.search(r"location \^~ /metrics \{(.*?)\n    \}", conf, re.S)
    assert block
    rules = re.findall(r"^\s*(allow|deny)\s+([^;]+);", block[1], re.M)
    assert rules == [("allow", "127.0.0.1"), ("allow", "::1"), ("deny", "all")]
    log_format = re.search(r"log_format roomd ([^;]+);", conf)
    assert log_format and "$request_uri" not in log_format[1] and "$args" not in log_format[1]
    assert "$request " not in log_format[1] and '$request"' not in log_format[1]


# --- nginx for real -----------------------------------------------------------------------


def test_nginx_accepts_the_config() -> None:
    conf = NGINX_CONF.read_text().replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    checked = nginx.check(conf)
    assert checked.returncode == 0, checked.stderr


@pytest.fixture
def two_roomds(spawn_roomd: Callable[..., RoomdProcess]) -> list[RoomdProcess]:
    return [spawn_roomd(), spawn_roomd()]


@pytest.fixture
def proxy(two_roomds: list[RoomdProcess]) -> Iterator[int]:
    """deploy/nginx-cluster.conf in front of two real roomd processes sharing the test Redis."""
    port = free_port()
    conf = NGINX_CONF.read_text().replace("listen 80;", f"listen 127.0.0.1:{port};")
    for address, roomd in zip(("172.28.0.21:3000", "172.28.0.22:3000"), two_roomds, strict=True):
        assert address in conf
        conf = conf.replace(address, f"127.0.0.1:{roomd.port}")
    with nginx.running(conf, port):
        yield port


def _open_sockets(roomd: RoomdProcess) -> int:
    with urllib.request.urlopen(f"{roomd.http}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^roomd_open_sockets(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert match, "roomd_open_sockets missing from /metrics"
    return int(float(match[1]))


async def test_nginx_serves_the_api_and_keeps_metrics_internal(proxy: int) -> None:
    assert nginx.status(proxy, "/health") == 200
    assert nginx.status(proxy, "/metrics", source="127.0.0.2") == 403
    assert nginx.status(proxy, "//metrics", source="127.0.0.2") == 403
    room = await Api(f"http://127.0.0.1:{proxy}").create("Ana")
    assert re.fullmatch(r"[A-Z]{4}", room["roomCode"])


async def test_sockets_naming_their_room_land_on_one_instance(proxy: int, two_roomds: list[RoomdProcess]) -> None:
    api = Api(f"http://127.0.0.1:{proxy}")
    host = await api.create("Host")
    code = host["roomCode"]
    tokens = [host["token"]] + [(await api.join(code, f"P{i}"))["token"] for i in range(5)]
    before = [_open_sockets(r) for r in two_roomds]
    sockets = []
    for token in tokens:  # through nginx, upgraded, room:state received: the WebSocket path works
        sock = await Socket.connect(f"ws://127.0.0.1:{proxy}/ws?token={token}&room={code}")
        state = await sock.expect("room:state")
        assert state["room"]["code"] == code
        sockets.append(sock)
    added = [_open_sockets(r) - b for r, b in zip(two_roomds, before, strict=True)]
    assert sorted(added) == [0, len(tokens)], f"sockets per instance: {added}"
    # the same room spelled in lower case still reaches the same room (roomd ignores `room`)
    late = await api.join(code, "Late")
    sock = await Socket.connect(f"ws://127.0.0.1:{proxy}/ws?token={late['token']}&room={code.lower()}")
    await sock.expect("room:state")
    for s in [*sockets, sock]:
        s.close()
