"""Delivery: one thread per destination drains its spool, retrying with backoff.

A failed batch stays in the spool and is retried after ``base * 2^(failures-1)`` seconds
(capped, with jitter); the spool's state records the failure for ``bastion audit status`` and
the metrics. A record the destination can never take (`RecordRefusedError`, or a line that
is not JSON) is dropped, counted and logged with its seq instead: retrying it would block
every later event for good. Nothing here ever touches the database record, which is already
committed.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bastion.backends.audit_sinks.base import (
    CHECKPOINT_KEY,
    BatchTooLargeError,
    DeliveryError,
    Destination,
    Record,
    RecordRefusedError,
    is_checkpoint,
)
from bastion.backends.audit_sinks.spool import Spool, SpoolBatch
from bastion.core.audit import format_timestamp, parse_timestamp

log = logging.getLogger("bastion.audit.delivery")


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float = 1.0
    max_seconds: float = 300.0

    def delay(self, failures: int, *, jitter: float) -> float:
        """Seconds to wait after ``failures`` failures in a row; ``jitter`` in [0, 1)."""
        raw = min(self.max_seconds, self.base_seconds * 2.0 ** max(failures - 1, 0))
        return float(raw * (0.5 + jitter / 2))


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """Moves records from one spool to one destination until stopped."""

    def __init__(
        self,
        spool: Spool,
        destination: Destination,
        *,
        backoff: Backoff | None = None,
        batch_size: int = 500,
        poll_seconds: float = 0.2,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.spool = spool
        self.destination = destination
        self.backoff = backoff or Backoff()
        self.batch_size = batch_size
        # Halved each time the destination finds a batch too large (HTTP 413), for good: its
        # body limit does not change while bastion runs.
        self.batch_limit = batch_size
        self.poll_seconds = poll_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"bastion-audit-{self.destination.name}", daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.destination.close()
        self.spool.release_reader()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step(now=self._clock())
            except Exception:  # a bug must not end delivery for good
                log.exception("audit delivery to %s failed unexpectedly", self.destination.name)
                wait = self.backoff.max_seconds
            self._stop.wait(wait)

    def step(self, *, now: datetime) -> float:
        """Deliver at most one batch; returns how long to wait before the next step."""
        if not self.spool.try_become_reader():
            return self.poll_seconds * 10  # another worker process delivers this spool
        state = self.spool.read_state()
        if state.next_attempt_at:
            retry_at = parse_timestamp(state.next_attempt_at)
            if now < retry_at:
                return min((retry_at - now).total_seconds(), self.poll_seconds * 5)
        batch = self.spool.peek(max_records=self.batch_limit)
        if batch is None:
            return self.poll_seconds
        records = [_parse(line) for line in batch.records]
        try:
            self._send(records, now=now)
        except RecordRefusedError as exc:
            self._drop_refused(batch, records, exc, now=now)
            return 0.0
        except BatchTooLargeError as exc:
            self.batch_limit = max(1, len(records) // 2)
            log.info(
                "audit delivery to %s: %s; batches of at most %d from now on",
                self.destination.name,
                exc.reason,
                self.batch_limit,
            )
            return 0.0
        except (DeliveryError, ValueError) as exc:
            reason = (
                exc.reason
                if isinstance(exc, DeliveryError)
                else "a spooled record is not an audit event"
            )
            delay = self.backoff.delay(state.consecutive_failures + 1, jitter=random.random())
            retry_at = now + timedelta(seconds=delay)
            self.spool.record_failure(
                reason, at=format_timestamp(now), retry_at=format_timestamp(retry_at)
            )
            log.warning("audit delivery to %s failed: %s", self.destination.name, reason)
            return min(delay, self.poll_seconds * 5)
        self.spool.commit(batch, at=format_timestamp(now))
        return 0.0

    def _send(self, records: list[Record | None], *, now: datetime) -> None:
        """Send the records before the first line that is not a JSON object, and refuse it."""
        valid: list[Record] = []
        for record in records:
            if record is None:
                break
            valid.append(record)
        if valid:
            self.destination.send(valid, now=now)
        if len(valid) < len(records):
            raise RecordRefusedError("the spooled line is not a JSON object", index=len(valid))

    def _drop_refused(
        self,
        batch: SpoolBatch,
        records: list[Record | None],
        refused: RecordRefusedError,
        *,
        now: datetime,
    ) -> None:
        """Commit what went before the refused record, then drop it, counted and logged."""
        index = refused.index
        if index:
            self.spool.commit(batch.part(0, index), at=format_timestamp(now))
        dropped = batch.part(index, index + 1)
        self.spool.drop(dropped)
        log.warning(
            "audit %s dropped for %s, which can never take it: %s",
            _describe(records[index], dropped),
            self.destination.name,
            refused.reason,
        )


def _parse(line: str) -> Record | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _describe(record: Record | None, where: SpoolBatch) -> str:
    """Which record: its seq, or its place in the spool when it has none to read."""
    if record is None:
        return f"record at byte {where.start} of spool segment {where.segment}"
    if is_checkpoint(record):
        inner = record[CHECKPOINT_KEY]
        return f"checkpoint seq {inner.get('seq') if isinstance(inner, dict) else None}"
    return f"event seq {record.get('seq')}"
