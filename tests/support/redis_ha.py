"""Real Redis Cluster and Sentinel setups for tests, from the ``redis-server`` binary on PATH.

* :class:`ClusterServers` - 3 masters + 3 replicas (``redis-cli --cluster create
  --cluster-replicas 1``), every node reporting ``cluster_state:ok`` and every replica
  in sync before ``start`` returns.
* :class:`SentinelServers` - a master, one replica and 3 Sentinels monitoring it as
  :data:`MASTER_NAME`, with low ``down-after-milliseconds``/``failover-timeout`` so a
  failover takes a few seconds; optionally password-protected (data nodes and Sentinels).

Everything listens on 127.0.0.1, on ports chosen here (never 6379), in a private
temporary directory removed by ``cleanup``. A Sentinel rewrites its configuration
file, so each gets its own writable copy. Nothing here touches the machine's Redis.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

MASTER_NAME = "roomd-test"
HOST = "127.0.0.1"
CLUSTER_PORT_RANGE = (20_000, 45_000)  # a cluster node's bus port is port + 10000: both must be free, <= 65535


def _binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is required for the Redis Cluster/Sentinel tests"
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port P <= 55535 with P and P + 10000 both free (a cluster node and its cluster bus)."""
    for _ in range(1000):
        port = random.randint(*CLUSTER_PORT_RANGE)
        if _port_free(port) and _port_free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class RedisNode:
    """One redis-server process (data node or Sentinel) with its own directory."""

    def __init__(self, root: Path, port: int, name: str, password: str | None = None) -> None:
        self.port = port
        self.name = name
        self.password = password
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.args: list[str] = []

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"

    def start(self, *args: str) -> RedisNode:
        self.args = list(args) or self.args
        self.process = subprocess.Popen(
            [_binary("redis-server"), *self.args], cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: bool(self.client().ping()), 10, f"{self.name} on port {self.port}")
        return self

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=2, **kwargs)

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            return client.info(section)  # type: ignore[no-any-return]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process dies at once, nothing flushed, no goodbye to replicas or clients."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


def _data_args(node: RedisNode, *extra: str) -> list[str]:
    args = ["--port", str(node.port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", str(node.dir), "--logfile", str(node.log),
            "--repl-diskless-sync-delay", "0"]  # fmt: skip  # a replica syncs at once, not after 5 s
    if node.password:
        args += ["--requirepass", node.password, "--masterauth", node.password]
    return [*args, *extra]


class ClusterServers:
    """3 masters and 3 replicas on 127.0.0.1; ``startup_nodes`` is what REDIS_CLUSTER_NODES takes."""

    def __init__(self, node_timeout_ms: int = 2000, password: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="roomd-test-cluster-"))
        self.node_timeout_ms = node_timeout_ms
        self.password = password
        self.nodes: list[RedisNode] = []
        self.started_in = 0.0  # seconds start() took

    @property
    def startup_nodes(self) -> str:
        return ",".join(n.address for n in self.nodes if n.running)

    def env(self) -> dict[str, str]:
        """The roomd/roomctl variables that reach this cluster."""
        env = {"REDIS_CLUSTER_NODES": self.startup_nodes}
        if self.password:
            env["REDIS_PASSWORD"] = self.password
        return env

    def start(self) -> ClusterServers:
        began = time.monotonic()
        ports: set[int] = set()
        while len(ports) < 6:
            ports.add(free_port_pair())
        for i, port in enumerate(sorted(ports)):
            node = RedisNode(self.root, port, f"node{i}", self.password)
            self.nodes.append(node)
            node.start(*_data_args(node, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                   "--cluster-node-timeout", str(self.node_timeout_ms),
                                   # as the README asks: a shard without a master stops only its own slots
                                   "--cluster-require-full-coverage", "no"))  # fmt: skip
        create = [_binary("redis-cli"), "--cluster", "create", *(n.address for n in self.nodes),
                  "--cluster-replicas", "1", "--cluster-yes"]  # fmt: skip
        if self.password:
            create += ["-a", self.password, "--no-auth-warning"]
        done = subprocess.run(create, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout.decode()}{done.stderr.decode()}")
        self.wait_healthy()
        self.started_in = time.monotonic() - began
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every running node says ``cluster_state:ok``, 3 masters cover the slots, replicas are in sync."""

        def healthy() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                with node.client() as client:
                    if client.cluster("info").get("cluster_state") != "ok":
                        return False
                    role = client.info("replication")
                if role["role"] == "slave" and role.get("master_link_status") != "up":
                    return False
            return len(self.masters()) == 3

        wait_until(healthy, timeout, "the cluster to be ok with replicas in sync", interval=0.1)

    def masters(self) -> list[RedisNode]:
        """Running masters that serve slots (in the slot map of a running node)."""
        return [node for node in self.nodes if node.running and self._slots_of(node)]

    def slot_map(self) -> list[tuple[int, int, int]]:
        """``(first slot, last slot, master port)`` as the first answering node sees it."""
        for node in self.nodes:
            if node.running:
                try:
                    with node.client() as client:
                        raw = client.execute_command("CLUSTER", "SLOTS")
                except (redis.RedisError, OSError):
                    continue
                return [(int(r[0]), int(r[1]), int(r[2][1])) for r in raw]
        raise RuntimeError("no cluster node answers")

    def _slots_of(self, node: RedisNode) -> list[tuple[int, int]]:
        return [(lo, hi) for lo, hi, port in self.slot_map() if port == node.port]

    def master_of_slot(self, slot: int) -> RedisNode:
        for node in self.masters():
            if any(lo <= slot <= hi for lo, hi in self._slots_of(node)):
                return node
        raise LookupError(f"no master serves slot {slot}")

    def node(self, port: int) -> RedisNode:
        return next(n for n in self.nodes if n.port == port)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class SentinelServers:
    """A master, a replica and 3 Sentinels watching it as :data:`MASTER_NAME`."""

    def __init__(
        self,
        *,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        password: str | None = None,
        sentinel_password: str | None = None,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="roomd-test-sentinel-"))
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.password = password
        self.sentinel_password = sentinel_password
        self.data: list[RedisNode] = []  # [first master, first replica]
        self.sentinels: list[RedisNode] = []
        self.started_in = 0.0

    def env(self) -> dict[str, str]:
        """The roomd/roomctl variables that reach the current master through the Sentinels."""
        env = {"REDIS_SENTINELS": ",".join(s.address for s in self.sentinels), "REDIS_SENTINEL_MASTER": MASTER_NAME}
        if self.password:
            env["REDIS_PASSWORD"] = self.password
        if self.sentinel_password:
            env["REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        return env

    def start(self) -> SentinelServers:
        began = time.monotonic()
        from tests.support.processes import free_port

        master = RedisNode(self.root, free_port(), "master", self.password)
        master.start(*_data_args(master))
        replica = RedisNode(self.root, free_port(), "replica", self.password)
        replica.start(*_data_args(replica, "--replicaof", HOST, str(master.port)))
        self.data = [master, replica]
        wait_until(lambda: replica.info("replication").get("master_link_status") == "up", 10, "the replica to sync")
        for i in range(3):
            sentinel = RedisNode(self.root, free_port(), f"sentinel{i}", self.sentinel_password)
            conf = sentinel.dir / "sentinel.conf"
            lines = [
                f"port {sentinel.port}",
                f"bind {HOST}",
                f"dir {sentinel.dir}",
                f"logfile {sentinel.log}",
                f"sentinel monitor {MASTER_NAME} {HOST} {master.port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
                f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
            ]
            if self.password:
                lines.append(f"sentinel auth-pass {MASTER_NAME} {self.password}")
            if self.sentinel_password:
                lines.append(f"requirepass {self.sentinel_password}")  # also what it uses to reach other Sentinels
            conf.write_text("\n".join(lines) + "\n")
            sentinel.start(str(conf), "--sentinel")
            self.sentinels.append(sentinel)
        self.wait_settled(master.port)
        self.started_in = time.monotonic() - began
        return self

    def sentinel_view(self, sentinel: RedisNode) -> dict[str, Any]:
        with sentinel.client() as client:
            return client.sentinel_master(MASTER_NAME)  # type: ignore[no-any-return]

    def wait_settled(self, master_port: int, timeout: float = 30) -> None:
        """Every running Sentinel names ``master_port`` as a healthy master, knows a live replica and the other
        Sentinels (without them, no quorum and no failover)."""
        running = [s for s in self.sentinels if s.running]

        def settled() -> bool:
            for sentinel in running:
                view = self.sentinel_view(sentinel)
                if int(view["port"]) != master_port or view["is_sdown"] or view["is_odown"]:
                    return False
                if int(view["num-other-sentinels"]) < len(running) - 1 or int(view["num-slaves"]) < 1:
                    return False
                with sentinel.client() as client:
                    replicas = client.sentinel_slaves(MASTER_NAME)
                if not any(not r["is_sdown"] and r.get("master-link-status") == "ok" for r in replicas):
                    return False
            return True

        wait_until(settled, timeout, f"the Sentinels to agree on master port {master_port}", interval=0.1)

    def master_port(self) -> int:
        """The master port the first answering Sentinel names."""
        for sentinel in self.sentinels:
            if sentinel.running:
                try:
                    return int(self.sentinel_view(sentinel)["port"])
                except (redis.RedisError, OSError):
                    continue
        raise RuntimeError("no Sentinel answers")

    def node(self, port: int) -> RedisNode:
        return next(n for n in self.data if n.port == port)

    def master(self) -> RedisNode:
        return self.node(self.master_port())

    def kill_master(self) -> RedisNode:
        """SIGKILL the current master; returns it (dead)."""
        master = self.master()
        master.kill()
        return master

    def wait_failover(self, old_port: int, timeout: float = 30) -> RedisNode:
        """Wait until the Sentinels name another master, and it answers as a master; returns it."""

        def promoted() -> bool:
            port = self.master_port()
            return port != old_port and self.node(port).info("replication")["role"] == "master"

        wait_until(promoted, timeout, "a Sentinel failover", interval=0.05)
        return self.master()

    def cleanup(self) -> None:
        for node in [*self.sentinels, *self.data]:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)
