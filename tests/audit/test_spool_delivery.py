"""The spool between the database and a destination: bounded on disk, retried with backoff,
visible in ``bastion audit status`` and the metrics, never in the way of the database."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bastion.backends.audit_sinks import (
    Backoff,
    DeliveryError,
    DeliveryWorker,
    Spool,
    SpoolOutbox,
)
from bastion.backends.audit_sinks import spool as spool_module
from bastion.backends.audit_sinks.base import Record, RecordRefusedError
from bastion.backends.audit_sinks.file import FileDestination
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


# --- records no destination batch can hold, or no destination can take ----------------------


def drain(worker: DeliveryWorker, spool: Spool, *, steps: int = 50) -> None:
    for _ in range(steps):  # bounded
        worker.step(now=T0)
        if spool.read_state().pending == 0:
            return


def delivered_seqs(spool: Spool) -> list[int]:
    """Drain ``spool`` to a destination that is up; the seqs it received, in order."""
    destination = FlakyDestination()
    destination.down = False
    drain(DeliveryWorker(spool, destination), spool)
    return [r["seq"] for r in destination.received]


def line(n: int, pad: int = 10) -> str:
    return json.dumps({"seq": n, "pad": "a" * pad})


def test_oversized_user_agent_cannot_stall_delivery(tmp_path: Path) -> None:
    """A 1.1 MB line (an event carrying a huge client header) is longer than a batch: it is
    delivered alone, and the events after it still flow (it used to stall delivery for good,
    status still saying ok)."""
    spool = Spool(tmp_path / "s", max_bytes=10**8)
    rig = make_rig("memory://", every=1000, outbox=SpoolOutbox([spool]))
    rig.append(rig.event(1))
    rig.append(rig.event(2, actor={"type": "anonymous", "id": None, "userAgent": "u" * 1_100_000}))
    rig.fill(3)
    path = tmp_path / "audit.log"
    worker = DeliveryWorker(spool, FileDestination(path))
    drain(worker, spool)
    events = [json.loads(x) for x in path.read_text().splitlines() if '"auditCheckpoint"' not in x]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert len(events[1]["actor"]["userAgent"]) == 1_100_000
    state = spool.read_state()
    assert (state.pending, state.dropped, state.failures) == (0, 0, 0)


def test_oversized_line_in_an_older_segment_loses_nothing_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oversized line and the rest of its segment used to be skipped without a word."""
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 2_000_000)
    spool = Spool(tmp_path / "s", max_bytes=10**8)
    spool.append([line(n, 1000) for n in range(1, 501)])
    spool.append([line(501, 1_100_000)])
    spool.append([line(n) for n in range(502, 505)])
    spool.append([line(505, 500_000)])  # still segment 1, which now passes 2 MB
    spool.append([line(506)])  # so this starts segment 2
    assert len(list((tmp_path / "s").glob("seg-*"))) == 2
    assert delivered_seqs(spool) == list(range(1, 507))
    state = spool.read_state()
    assert (state.pending, state.delivered, state.dropped) == (0, 506, 0)


class RefusingDestination(FlakyDestination):
    """Takes every record but those whose ``seq`` it can never take."""

    def __init__(self, refused: set[int]) -> None:
        super().__init__()
        self.refused = refused

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        for index, record in enumerate(records):
            if record.get("seq") in self.refused:
                raise RecordRefusedError("too large for this receiver", index=index)
            self.received.append(record)


def test_refused_record_is_dropped_counted_and_logged_and_the_rest_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    spool.append([line(n) for n in range(1, 7)])
    destination = RefusingDestination({3, 4})
    with caplog.at_level(logging.WARNING, logger="bastion.audit.delivery"):
        drain(DeliveryWorker(spool, destination), spool)
    assert [r["seq"] for r in destination.received] == [1, 2, 5, 6]
    state = spool.read_state()
    assert (state.pending, state.delivered, state.dropped, state.failures) == (0, 4, 2, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("event seq 3 dropped" in w and "too large" in w for w in warnings)
    assert any("event seq 4 dropped" in w for w in warnings)


def test_spooled_line_that_is_not_json_is_dropped_not_retried_forever(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    spool.append([line(1), '{"seq": 2, "cut sho', "[1, 2]", line(4)])
    assert delivered_seqs(spool) == [1, 4]
    state = spool.read_state()
    assert (state.pending, state.delivered, state.dropped, state.failures) == (0, 2, 2, 0)


class _Killed(BaseException):
    """The writer process dying mid-write (not an Exception: nothing may catch it)."""


def append_killed_after(
    spool: Spool, records: list[str], written: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``spool.append(records)`` by a writer killed once ``written`` bytes reached the file."""
    real_fdopen = os.fdopen

    class Dying:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Dying:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> None:
            self.handle.write(data[:written])
            raise _Killed

    def fdopen(fd: int, mode: str) -> Any:  # the segment's handle dies; state.json's does not
        handle = real_fdopen(fd, mode)
        return Dying(handle) if mode == "ab" else handle

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdopen", fdopen)
        with pytest.raises(_Killed):
            spool.append(records)


@pytest.mark.parametrize("then_append", [True, False], ids=["next-append", "next-reader"])
def test_a_writer_killed_mid_write_costs_only_its_own_records_and_the_count_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then_append: bool
) -> None:
    """Record 2 landed whole, 3 was cut mid-line, 4 never reached the file. The torn line is
    ended before anything else is written (it used to swallow the next record, 5, whole), and
    `enqueued` still equals delivered + dropped: both the torn and the missing record are
    counted dropped, whether a writer or a starting reader finds them first."""
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    spool.append([line(1)])
    cut = len(line(2)) + 1 + 5
    append_killed_after(spool, [line(2), line(3), line(4)], cut, monkeypatch)
    if then_append:
        spool.append([line(5)])
    expected = [1, 2, 5] if then_append else [1, 2]
    assert delivered_seqs(spool) == expected
    state = spool.read_state()
    assert (state.enqueued, state.delivered, state.dropped, state.pending) == (
        len(expected) + 2,
        len(expected),
        2,
        0,
    )


def test_a_writer_killed_before_any_byte_counts_its_records_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    spool.append([line(1)])
    append_killed_after(spool, [line(2), line(3)], 0, monkeypatch)
    spool.append([line(4)])
    assert delivered_seqs(spool) == [1, 4]
    state = spool.read_state()
    assert (state.enqueued, state.delivered, state.dropped, state.pending) == (4, 2, 2, 0)


def test_torn_tail_of_an_older_segment_is_counted_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment that ends in a torn line behind a newer one (a spool an earlier bastion
    left, which ended no torn line) is read to its end: the torn line is delivered as it is
    and refused, never skipped unseen nor waited on for ever."""
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 20)
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    spool.append([line(1)])
    [first] = (tmp_path / "s").glob("seg-*")
    with first.open("ab") as handle:
        handle.write(b'{"seq": 2, "pa')
    second = first.with_name(first.name.replace("000000000001", "000000000002"))
    second.write_text(line(3) + "\n")
    destination = FlakyDestination()
    destination.down = False
    worker = DeliveryWorker(spool, destination)
    for _ in range(5):
        worker.step(now=T0)
    assert [r["seq"] for r in destination.received] == [1, 3]
    assert spool.read_state().dropped == 1


def test_a_line_still_being_written_waits_for_its_newline(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10**6)
    spool.append([line(1)])
    segment = next((tmp_path / "s").glob("seg-*"))
    with segment.open("ab") as handle:
        handle.write(line(2)[:5].encode())
        handle.flush()
        batch = spool.peek(max_records=10)
        assert batch is not None and batch.records == [line(1)]
        spool.commit(batch, at="t")
        assert spool.peek(max_records=10) is None
        handle.write(line(2)[5:].encode() + b"\n")
    batch = spool.peek(max_records=10)
    assert batch is not None and batch.records == [line(2)]
