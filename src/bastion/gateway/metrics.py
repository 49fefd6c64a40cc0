"""The gateway's Prometheus metrics, in a registry of its own (no process-global state).

Served at ``<prefix>/metrics``. With ``bastion serve --workers N`` each worker counts for itself,
but for ``bastion_connections_open``: the workers share their connection counts.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST.encode()

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
            "1 while the shared rate-limit store (Redis) answers, 0 while it does not.",
            registry=self.registry,
        )
        self.rate_limit_fallback = Counter(
            "bastion_rate_limit_fallback_decisions",
            "Rate-limit decisions made by this replica alone (limit / replicas) because the "
            "shared store was unreachable and failClosed is false.",
            registry=self.registry,
        )
        self.rate_limit_store_up.set(1)
        self.connections_open = Gauge(
            "bastion_connections_open",
            "Client connections open (WebSockets included; with --workers, in all workers), "
            "counted against gateway.connections.max.",
            registry=self.registry,
        )
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
