"""The spool between the database and a destination: bounded on disk, retried with backoff,
visible in ``bastion audit status`` and the metrics, never in the way of the database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from bastion.backends.audit_sinks import (
    Backoff,
    DeliveryError,
    DeliveryWorker,
    Spool,
    SpoolOutbox,
)
from bastion.backends.audit_sinks.base import Record
from bastion.gateway.audit_metrics import AuditDeliveryCollector

from .conftest import T0, make_rig


class FlakyDestination:
    name = "flaky"

    def __init__(self) -> None:
        self.down = True
        self.received: list[Record] = []
        self.attempts = 0

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        self.attempts += 1
        if self.down:
            raise DeliveryError("flaky: connection refused")
        self.received += records

    def close(self) -> None:
        return None


def test_spool_is_bounded_and_counts_what_it_drops(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=1000)
    assert spool.append(["x" * 300, "y" * 300]) == 0
    assert spool.append(["z" * 500]) == 1
    state = spool.read_state()
    assert (state.enqueued, state.dropped, state.pending) == (3, 1, 2)
    assert spool.size() <= 1000


def test_failed_deliveries_back_off_and_then_drain(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    rig = make_rig("memory://", outbox=SpoolOutbox([spool]))
    rig.fill(5)
    destination = FlakyDestination()
    worker = DeliveryWorker(spool, destination, backoff=Backoff(base_seconds=2, max_seconds=60))
    now = T0
    worker.step(now=now)
    state = spool.read_state()
    assert state.consecutive_failures == 1 and state.last_error == "flaky: connection refused"
    assert destination.attempts == 1
    worker.step(now=now + timedelta(milliseconds=100))  # still backing off: no new attempt
    assert destination.attempts == 1
    for minute in range(1, 4):
        worker.step(now=now + timedelta(minutes=minute))
    assert spool.read_state().consecutive_failures == 4
    destination.down = False
    worker.step(now=now + timedelta(hours=1))
    state = spool.read_state()
    received = [r for r in destination.received if "seq" in r]
    assert [r["seq"] for r in received] == [1, 2, 3, 4, 5]
    assert (state.pending, state.consecutive_failures, state.failures) == (0, 0, 4)
    assert any("auditCheckpoint" in r for r in destination.received)


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_seconds=1, max_seconds=30)
    delays = [backoff.delay(n, jitter=1.0) for n in range(1, 8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(3, jitter=0.0) == 2


def test_only_one_reader_per_spool(tmp_path: Path) -> None:
    first, second = Spool(tmp_path / "s", max_bytes=10**6), Spool(tmp_path / "s", max_bytes=10**6)
    assert first.try_become_reader()
    assert not second.try_become_reader()
    first.release_reader()
    assert second.try_become_reader()


def test_metrics_show_failing_destinations(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "splunk", max_bytes=10**6)
    spool.append([json.dumps({"seq": 1})])
    spool.record_failure("splunk HEC answered HTTP 503", at="t", retry_at="t")
    registry = CollectorRegistry()
    registry.register(AuditDeliveryCollector(lambda: {"splunk": spool.read_state()}))
    text = generate_latest(registry).decode()
    assert 'bastion_audit_destination_pending_events{destination="splunk"} 1.0' in text
    assert 'bastion_audit_destination_failing{destination="splunk"} 1.0' in text
    assert 'bastion_audit_destination_failures_total{destination="splunk"} 1.0' in text


def test_segments_are_removed_once_delivered(tmp_path: Path, monkeypatch: object) -> None:
    from bastion.backends.audit_sinks import spool as spool_module

    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 100)  # type: ignore[attr-defined]
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    for n in range(10):
        spool.append([json.dumps({"seq": n, "pad": "x" * 40})])
    assert len(list((tmp_path / "s").glob("seg-*"))) > 3
    destination = FlakyDestination()
    destination.down = False
    worker = DeliveryWorker(spool, destination, batch_size=3)
    for _ in range(20):  # bounded
        if worker.step(now=T0) > 0 and spool.read_state().pending == 0:
            break
    assert [r["seq"] for r in destination.received] == list(range(10))
    assert len(list((tmp_path / "s").glob("seg-*"))) == 1
