"""The gateway's Prometheus metrics, in a registry of its own (no process-global state).

Served at ``<prefix>/metrics``. With ``bastion serve --workers N`` each worker keeps its metrics
in files of the directory the serving process made (``shared``, Prometheus's multiprocess
mode: the workers' environment names it, so their metrics are written there from the first)
and a scrape, whichever worker answers it, adds up every worker's: the counters of workers
that have ended included, so no total goes down. Gauges read at scrape time (`sample`) are
the same in every worker: they read what the workers share.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from bastion.gateway.workers import is_live_sibling

# prometheus_client's file of one process's gauges that count only while it lives.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


class _Sampled(Collector):
    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._documentation, value=self._read())


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST.encode()

    def __init__(self, shared: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._shared = shared
        self._scraped: list[Collector] = []  # collectors that read shared state at scrape time
        if shared is not None:
            _forget_ended_workers(shared)
        self.requests = Counter(
            "bastion_requests",
            "Requests decided by the gateway, by mode and HTTP status class.",
            ["mode", "status"],
            registry=self.registry,
        )
        self.rate_limit_hits = Counter(
            "bastion_rate_limit_hits",
            "Requests refused with 429, by the limit that refused them.",
            ["limit"],
            registry=self.registry,
        )
        self.rate_limit_store_up = Gauge(
            "bastion_rate_limit_store_up",
            "1 while the shared rate-limit store (Redis) answers, 0 while it does not (with "
            "--workers, for any worker).",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.rate_limit_fallback = Counter(
            "bastion_rate_limit_fallback_decisions",
            "Rate-limit decisions made by this replica alone (limit / replicas) because the "
            "shared store was unreachable and failClosed is false.",
            registry=self.registry,
        )
        self.rate_limit_store_up.set(1)
        self.connections_refused = Counter(
            "bastion_connections_refused",
            "Connections refused before a request reached the gateway, by reason: max and "
            "per_client (gateway.connections), head_too_large (431), head_timeout (408), "
            "bad_http (400), tls_handshake (a TLS handshake failed or ran out of time).",
            ["reason"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Any] = {}

    def observe(self, mode: str, status: int) -> None:
        key = (mode, status // 100)
        child = self._children.get(key)
        if child is None:  # a handful of (mode, class) pairs: resolved once each
            child = self._children[key] = self.requests.labels(mode, f"{status // 100}xx")
        child.inc()

    def sample(self, collector: Collector) -> None:
        """Add a collector that reads, at scrape time, what every worker shares."""
        self.registry.register(collector)
        self._scraped.append(collector)

    def track_connections(self, read_open: Callable[[], int]) -> None:
        self.sample(
            _Sampled(
                "bastion_connections_open",
                "Client connections open (WebSockets included; with --workers, in all workers), "
                "counted against gateway.connections.max.",
                read_open,
            )
        )

    def render(self) -> bytes:
        if self._shared is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(self._shared))  # type: ignore[no-untyped-call]
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)


def _forget_ended_workers(shared: Path) -> None:
    """Remove the live gauges of workers that have ended (a starting worker does this, as it
    clears their rows of the connection table); their counters stay in the totals."""
    for path in shared.iterdir():
        found = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if found is not None and not is_live_sibling(int(found.group(1))):
            mark_process_dead(int(found.group(1)), str(shared))  # type: ignore[no-untyped-call]
