"""Prometheus metrics (``GET /metrics``), one registry per process.

Hot-path numbers (deliveries, open sockets) are plain integers kept by the
hub and read at scrape time by a custom collector, so fan-out pays nothing
for being observable.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from roomd.fanout import Broker, Hub
from roomd.transport.responses import JsonErrors


class Metrics:
    """The process's metric objects, in a private registry (not the global default).

    A private registry keeps tests that build several applications in one
    process from clashing, and keeps library metrics out of the scrape.
    Handlers update the counters and histograms here; the live numbers of the
    hub and bus are read by :class:`_LiveCollector` only when scraped.
    """

    def __init__(self, hub: Hub, bus: Broker) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_latency = Histogram(
            "roomd_http_request_duration_seconds",
            "HTTP request latency by route and status class.",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "roomd_rate_limited_total", "Requests or frames refused by a rate limit.", ["transport"],
            registry=self.registry,
        )  # fmt: skip
        self.redis_errors = Counter(
            "roomd_redis_errors_total", "Operations that failed because Redis did not answer.", registry=self.registry
        )
        self.connections_refused = Counter(
            "roomd_connections_refused_total",
            "TCP connections closed at once: over MAX_CONNECTIONS (total) or MAX_CONNECTIONS_PER_CLIENT (per_client).",
            ["reason"], registry=self.registry,
        )  # fmt: skip
        for reason in ("total", "per_client"):
            self.connections_refused.labels(reason)
        self.accept_errors = Counter(
            "roomd_accept_errors_total", "accept() failures (EMFILE, ENFILE, ...) that paused accepting briefly.",
            ["errno"], registry=self.registry,
        )  # fmt: skip
        self.open_connections = Gauge(
            "roomd_open_connections", "TCP connections open in this process (HTTP and WebSocket).",
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(_LiveCollector(hub, bus))


class _LiveCollector(Collector):
    """Reads the hub's and bus's plain counters at scrape time (nothing on the hot path)."""

    def __init__(self, hub: Hub, bus: Broker) -> None:
        self.hub = hub
        self.bus = bus

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("roomd_open_sockets", "Open WebSocket connections in this process.", len(self.hub))
        yield GaugeMetricFamily(
            "roomd_viewer_sockets", "Open WebSocket connections of viewers in this process.", self.hub.viewers()
        )
        yield GaugeMetricFamily(
            "roomd_local_rooms", "Rooms with at least one socket in this process.", len(self.hub.rooms())
        )
        yield CounterMetricFamily("roomd_bus_events", "Room events received from Redis pub/sub.", self.hub.received)
        yield CounterMetricFamily(
            "roomd_events_delivered", "Event frames written to local sockets.", self.hub.delivered
        )
        bus = self.bus.health()
        yield CounterMetricFamily(
            "roomd_bus_reconnects",
            "Times a pub/sub connection was rebuilt (and its rooms resynced).",
            bus.reconnects,
        )
        yield GaugeMetricFamily(
            "roomd_bus_rooms", "Rooms this process is subscribed to (lingering ones included).", bus.rooms
        )
        yield GaugeMetricFamily(
            "roomd_bus_connections", "Pub/sub connections open (Redis Cluster: one per master in use).", bus.connections
        )


class MetricsHandler(JsonErrors):
    """``GET /metrics``; any other method answers the documented JSON 405 like every route."""

    async def get(self) -> None:
        metrics: Metrics = self.application.settings["metrics"]
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(metrics.registry))
