"""Retention (``security.audit.retention``): old events go, the rest still verifies.

Events are removed a checkpoint at a time: each step deletes every event up to a checkpoint
signed before the cut-off, and every older checkpoint. The checkpoint at the cut stays as the
anchor: the first remaining event links to its signed head hash, so `bastion audit verify`
checks what remains from there. The newest event is never removed, so the chain always
continues from a stored head.

Each step is recorded (``audit.retention``, naming the cut: ``anchorSeq`` and ``anchorHash``)
and sealed by a checkpoint in the same transaction as its delete. Verification requires that
record for a trail that starts after seq 1: otherwise deleting the oldest events (and the
checkpoints that named them) would look like retention. One transaction means a crash leaves
either both or neither.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.config.units import moment_before
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.model import AuditEvent
from bastion.services.audit.events import append_events, build_event
from bastion.services.audit.recorder import RecordingAuditStore
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
    removed, anchor, head_seq = 0, None, None
    while True:
        with storage.transaction() as tx:
            bounds = tx.audit.bounds()
            if bounds is None:
                break
            # The head when the run began: the records it appends never make more removable.
            head_seq = bounds[1] if head_seq is None else head_seq
            candidates = [
                c
                for c in tx.audit.checkpoints(from_seq=bounds[0], through_seq=head_seq - 1)
                if c.timestamp < cutoff
            ]
            if not candidates:
                break
            # Small steps keep each transaction (and the WAL) short on a large trail.
            step = next((c for c in candidates if c.seq - bounds[0] >= 10_000), candidates[-1])
            count = tx.audit.delete_through(step.seq)
            _record(tx, step, removed=count, cutoff=cutoff, now=now, tenant=tenant)
        removed, anchor = removed + count, step.seq
    return PruneResult(removed, anchor)


def _record(
    tx: UnitOfWork,
    anchor: AuditCheckpoint,
    *,
    removed: int,
    cutoff: datetime,
    now: datetime,
    tenant: str,
) -> None:
    """Record the cut at ``anchor`` and seal it, so that only the key holder can explain a cut:
    an unsigned record could be appended at the head by anyone who can write the table."""
    details = {
        "removed": removed,
        "anchorSeq": anchor.seq,
        "anchorHash": anchor.head_hash,
        "cutoff": cutoff.isoformat(),
    }
    event = build_event(
        action="audit.retention",
        outcome="success",
        tenant=tenant,
        now=now,
        actor=dict(SYSTEM_ACTOR),
        resource={"type": "audit", "id": "events"},
        details=details,
    )
    append_events(tx, [event])
    if isinstance(tx.audit, RecordingAuditStore):
        tx.audit.seal_now()


def retention_cut(event: AuditEvent) -> tuple[int, str | None] | None:
    """(anchorSeq, anchorHash) of a retention record: the cut it made; None for any other
    event. The actor is told by its type and ``via`` only: a masking rule may hash ids, and
    a route may be named ``audit.retention`` (its events' actors are principals).

    Records written before bastion named the hash carry ``anchorSeq`` only (hash None): the
    signed checkpoint the remaining trail must start from still pins that cut's hash.
    """
    by_retention = (event.actor.get("type"), event.actor.get("via")) == ("system", "retention")
    if event.action != "audit.retention" or not by_retention:
        return None
    seq, digest = event.details.get("anchorSeq"), event.details.get("anchorHash")
    if type(seq) is not int or not isinstance(digest, str | None):
        return None
    return seq, digest


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
