"""Prometheus metrics of audit delivery: per destination, what waits, what went, what failed.

Read from the spools' state at scrape time, so they agree with ``bastion audit status`` and
cover events spooled by every process (CLI changes included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bastion.backends.audit_sinks import SpoolState


class AuditDeliveryCollector(Collector):
    def __init__(self, states: Callable[[], Mapping[str, SpoolState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "bastion_audit_destination_pending_events",
            "Audit events spooled for a destination and not yet delivered.",
            labels=["destination"],
        )
        failing = GaugeMetricFamily(
            "bastion_audit_destination_failing",
            "1 while the last delivery attempt to a destination failed, else 0.",
            labels=["destination"],
        )
        delivered = CounterMetricFamily(
            "bastion_audit_destination_delivered_events",
            "Audit events a destination accepted.",
            labels=["destination"],
        )
        failures = CounterMetricFamily(
            "bastion_audit_destination_failures",
            "Failed delivery attempts (each is retried with backoff).",
            labels=["destination"],
        )
        dropped = CounterMetricFamily(
            "bastion_audit_destination_dropped_events",
            "Events a destination will never get: its spool was full, or it can never take them.",
            labels=["destination"],
        )
        for name, state in self._states().items():
            pending.add_metric([name], state.pending)
            failing.add_metric([name], 1 if state.consecutive_failures else 0)
            delivered.add_metric([name], state.delivered)
            failures.add_metric([name], state.failures)
            dropped.add_metric([name], state.dropped)
        yield from (pending, failing, delivered, failures, dropped)
