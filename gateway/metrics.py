"""Prometheus metrics of one gateway process, in a registry of its own.

Exposed at ``/metrics`` by the ``status`` plugin. With several workers each
process keeps its own figures (a scrape sees the worker that answered).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

KNOWN_METHODS = frozenset(
    "GET HEAD POST PUT DELETE OPTIONS PATCH PROPFIND PROPPATCH MKCOL MKCALENDAR COPY MOVE "
    "LOCK UNLOCK REPORT ACL RPC_IN_DATA RPC_OUT_DATA".split()
)


class _ConnectionCollector(Collector):
    """Reads open connections from the running listeners at scrape time."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], int]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gateway_connections_open",
            "Open connections by listener: http:PORT, https:PORT or a TCP service's name",
            labels=["listener"],
        )
        for listener, count in sorted(self.sources.items()):
            family.add_metric([listener], count())
        yield family


class Metrics:
    """The gateway's own instruments; plugins may add theirs to ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "gateway_http_requests", "HTTP requests by plugin, method and status",
            ["plugin", "method", "status"], registry=self.registry,
        )
        self.http_latency = Histogram(
            "gateway_http_request_duration_seconds", "HTTP request latency by plugin",
            ["plugin"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.http_in_flight = Gauge(
            "gateway_http_requests_in_flight", "HTTP requests being served, by listener",
            ["listener"], registry=self.registry,
        )
        self._connections = _ConnectionCollector()
        self.registry.register(self._connections)
        # Labelled children, cached: ``labels()`` takes a lock and builds a key each call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}
        self._in_flight: dict[str, Any] = {}

    def observe_request(self, plugin: str, method: str, status: int, seconds: float) -> None:
        key = (plugin, method, status)
        counter = self._counters.get(key)
        if counter is None:
            label = method if method in KNOWN_METHODS else "other"
            counter = self._counters[key] = self.http_requests.labels(plugin, label, str(status))
        counter.inc()
        latency = self._latencies.get(plugin)
        if latency is None:
            latency = self._latencies[plugin] = self.http_latency.labels(plugin)
        latency.observe(seconds)

    def in_flight(self, listener: str) -> Any:
        gauge = self._in_flight.get(listener)
        if gauge is None:
            gauge = self._in_flight[listener] = self.http_in_flight.labels(listener)
        return gauge

    def track_connections(self, listener: str, count: Callable[[], int]) -> None:
        """Report ``count()`` as the open connections of ``listener`` at each scrape."""
        self._connections.sources[listener] = count

    def render(self) -> bytes:
        return generate_latest(self.registry)
