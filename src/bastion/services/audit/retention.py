"""Retention (``security.audit.retention``): old events go, the rest still verifies.

Events are removed a checkpoint at a time: each step deletes every event up to a checkpoint
signed before the cut-off, and every older checkpoint, in one transaction. The checkpoint at
the cut stays as the anchor: the first remaining event links to its signed head hash, so
`bastion audit verify` checks what remains from there. The newest event is never removed, so
the chain always continues from a stored head. Each run that removes something is itself
recorded (``audit.retention``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bastion.backends.protocols import Storage
from bastion.config.units import moment_before
from bastion.services.audit.events import append_events, build_event
from bastion.services.clock import Clock

log = logging.getLogger("bastion.audit")

SYSTEM_ACTOR = {"type": "system", "id": "bastion", "via": "retention"}


def cutoff_before(now: datetime, retention: timedelta) -> datetime:
    """``now - retention``: events older than that may go. A retention reaching back before
    the year 1 (``999999999d``) keeps everything, so its cut-off is the earliest moment."""
    try:
        return moment_before(now, retention)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PruneResult:
    removed: int
    anchor_seq: int | None


def prune(storage: Storage, *, cutoff: datetime, now: datetime, tenant: str) -> PruneResult:
    """Remove events covered by checkpoints signed before ``cutoff``, one checkpoint a step."""
    removed, anchor = 0, None
    while True:
        with storage.transaction() as tx:
            head_seq, _ = tx.audit.head()
            bounds = tx.audit.bounds()
            if bounds is None:
                break
            candidates = [
                c
                for c in tx.audit.checkpoints(from_seq=bounds[0])
                if c.timestamp < cutoff and c.seq < head_seq
            ]
            if not candidates:
                break
            # Small steps keep each transaction (and the WAL) short on a large trail.
            step = next((c for c in candidates if c.seq - bounds[0] >= 10_000), candidates[-1])
            count = tx.audit.delete_through(step.seq)
        removed, anchor = removed + count, step.seq
    if removed:
        event = build_event(
            action="audit.retention",
            outcome="success",
            tenant=tenant,
            now=now,
            actor=dict(SYSTEM_ACTOR),
            resource={"type": "audit", "id": "events"},
            details={"removed": removed, "anchorSeq": anchor, "cutoff": cutoff.isoformat()},
        )
        with storage.transaction() as tx:
            append_events(tx, [event])
    return PruneResult(removed, anchor)


class RetentionJob:
    """Runs `prune` at start and then every ``interval`` inside ``bastion serve``."""

    def __init__(
        self,
        storage: Storage,
        *,
        retention: timedelta,
        clock: Clock,
        tenant: str,
        interval: timedelta = timedelta(hours=1),
    ) -> None:
        self._storage = storage
        self._retention = retention
        self._clock = clock
        self._tenant = tenant
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> PruneResult:
        now = self._clock.now()
        cutoff = cutoff_before(now, self._retention)
        return prune(self._storage, cutoff=cutoff, now=now, tenant=self._tenant)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="bastion-audit-retention", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.run_once()
                if result.removed:
                    log.info("audit retention removed %d events", result.removed)
            except Exception as exc:
                log.warning("audit retention failed: %s", type(exc).__name__)
            self._stop.wait(self._interval.total_seconds())
