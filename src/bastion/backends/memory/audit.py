"""The in-memory audit log and its store, mirroring `bastion.backends.sql.audit`."""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bastion.backends.audit_rows import actor_id, encode_body, filter_text, resource_key
from bastion.backends.protocols import IndexedAuditRow
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.model import AuditEvent, AuditQuery
from bastion.errors import ConflictError, StorageError


def utc(value: datetime, operation: str) -> datetime:
    """``value`` in UTC; `StorageError` for a naive datetime, as the SQL backend refuses one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise StorageError(f"{operation} failed (naive datetime)")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: the free-form parts as JSON text, so callers never share a dict."""

    head: AuditEvent
    actor_id: str
    resource_key: str
    body: str

    def event(self) -> AuditEvent:
        body: dict[str, Any] = json.loads(self.body)
        return replace(
            self.head,
            actor=body["actor"],
            resource=body["resource"],
            details=body["details"],
            request=body["request"],
        )


@dataclass
class AuditLog:
    """Events ordered by seq with the unique seq and event id sets, and the checkpoints.

    As a unit of work's pending log, ``deleted_through`` is a retention delete to apply at
    commit (`commit_into`).
    """

    events: list[StoredEvent] = field(default_factory=list)
    seqs: set[int] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)
    checkpoints: dict[int, AuditCheckpoint] = field(default_factory=dict)
    deleted_through: int = 0

    def add(self, stored: StoredEvent) -> None:
        self.seqs.add(stored.head.seq)
        self.event_ids.add(stored.head.event_id)
        if not self.events or self.events[-1].head.seq < stored.head.seq:
            self.events.append(stored)
        else:
            bisect.insort(self.events, stored, key=lambda s: s.head.seq)

    def delete_through(self, seq: int) -> int:
        cut = bisect.bisect_right(self.events, seq, key=_seq)
        removed, self.events = self.events[:cut], self.events[cut:]
        for stored in removed:
            self.seqs.discard(stored.head.seq)
            self.event_ids.discard(stored.head.event_id)
        self.checkpoints = {s: c for s, c in self.checkpoints.items() if s >= seq}
        return len(removed)

    def commit_into(self, log: AuditLog) -> None:
        """Apply this pending log (events, checkpoints, a retention delete) to ``log``."""
        for stored in self.events:
            log.add(stored)
        log.checkpoints.update(self.checkpoints)
        if self.deleted_through:
            log.delete_through(self.deleted_through)


def _matches(stored: StoredEvent, query: AuditQuery) -> bool:
    head = stored.head
    checks = (
        query.since is None or head.timestamp >= query.since,
        query.until is None or head.timestamp < query.until,
        query.action is None or head.action == query.action,
        query.actor is None or stored.actor_id == filter_text(query.actor),
        query.resource is None or stored.resource_key == filter_text(query.resource),
        query.outcome is None or head.outcome == query.outcome,
        query.tenant is None or head.tenant == query.tenant,
    )
    return all(checks)


class MemoryAuditStore:
    """Reads see the committed log plus this unit of work's pending events."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self.pending = AuditLog()
        # What failed in this unit of work; `MemoryStorage.transaction` then keeps none of it.
        self.spoiled: str | None = None

    def lock_head(self) -> tuple[int, str]:
        # The storage lock held by the unit of work already serialises every writer.
        return self.head()

    def head(self) -> tuple[int, str]:
        heads = [log.events[-1].head for log in (self._log, self.pending) if log.events]
        if not heads:
            return (0, "")
        head = max(heads, key=lambda event: event.seq)
        if head.seq <= self.pending.deleted_through:
            return (0, "")
        return (head.seq, head.hash)

    def head_timestamp(self) -> datetime | None:
        seq = self.head()[0]
        if seq == 0:
            return None
        return self.query(AuditQuery(after_seq=seq - 1, limit=1))[0].timestamp

    def insert(self, events: Sequence[AuditEvent], *, bodies: Sequence[str] | None = None) -> None:
        try:
            self._insert(events, bodies)
        except BaseException:
            self.spoiled = "insert audit events"  # as on SQL, though nothing was added here
            raise

    def _insert(self, events: Sequence[AuditEvent], bodies: Sequence[str] | None) -> None:
        if bodies is not None and len(bodies) != len(events):
            raise StorageError("insert audit events failed (one body per event)")
        stored = [
            self._stored(event, None if bodies is None else bodies[i])
            for i, event in enumerate(events)
        ]
        seqs = {s.head.seq for s in stored}
        event_ids = {s.head.event_id for s in stored}
        if (
            len(seqs) < len(stored)
            or len(event_ids) < len(stored)
            or any(seq in log.seqs for log in (self._log, self.pending) for seq in seqs)
            or any(eid in log.event_ids for log in (self._log, self.pending) for eid in event_ids)
        ):
            raise ConflictError("insert audit events: a value that must be unique is already taken")
        for item in stored:
            self.pending.add(item)

    @staticmethod
    def _stored(event: AuditEvent, body: str | None) -> StoredEvent:
        head = replace(
            event,
            timestamp=utc(event.timestamp, "insert audit events"),
            actor={},
            resource={},
            details={},
            request={},
        )
        text = encode_body(event) if body is None else body
        return StoredEvent(head, actor_id(event), resource_key(event), text)

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        if query.since is not None:
            utc(query.since, "query audit events")
        if query.until is not None:
            utc(query.until, "query audit events")
        if query.limit <= 0:
            return []
        after = max(query.after_seq or 0, self.pending.deleted_through)
        found: list[StoredEvent] = []
        for log in (self._log, self.pending):
            start = bisect.bisect_right(log.events, after, key=_seq)
            events = log.events
            matching = (events[i] for i in range(start, len(events)) if _matches(events[i], query))
            # Each log is in seq order, so at most `limit` of each can be in the answer.
            found.extend(itertools.islice(matching, query.limit))
        found.sort(key=_seq)
        return [stored.event() for stored in found[: query.limit]]

    def iterate(
        self, *, after_seq: int = 0, batch: int = 1000, through_seq: int | None = None
    ) -> Iterator[AuditEvent]:
        last = after_seq
        size = max(batch, 1)
        while True:
            page = self.query(AuditQuery(after_seq=last, limit=size))
            for event in page:
                if through_seq is not None and event.seq > through_seq:
                    return
                yield event
            if len(page) < size:
                return
            last = page[-1].seq

    def iterate_indexed(
        self, *, after_seq: int = 0, batch: int = 1000, through_seq: int | None = None
    ) -> Iterator[IndexedAuditRow]:
        after = max(after_seq, self.pending.deleted_through)
        merged = sorted(
            (s for log in (self._log, self.pending) for s in log.events if s.head.seq > after),
            key=_seq,
        )
        for stored in merged:
            if through_seq is not None and stored.head.seq > through_seq:
                return
            yield IndexedAuditRow(stored.event(), stored.actor_id, stored.resource_key)

    def bounds(self) -> tuple[int, int] | None:
        first = self.query(AuditQuery(limit=1))
        if not first:
            return None
        return (first[0].seq, self.head()[0])

    def insert_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        if any(checkpoint.seq in log.checkpoints for log in (self._log, self.pending)):
            raise ConflictError("insert audit checkpoint: a checkpoint exists at that seq")
        stored = replace(checkpoint, timestamp=utc(checkpoint.timestamp, "insert checkpoint"))
        self.pending.checkpoints[checkpoint.seq] = stored

    def _all_checkpoints(self) -> dict[int, AuditCheckpoint]:
        merged = {**self._log.checkpoints, **self.pending.checkpoints}
        floor = self.pending.deleted_through
        return {s: c for s, c in merged.items() if s >= floor}

    def last_checkpoint(self) -> AuditCheckpoint | None:
        merged = self._all_checkpoints()
        return merged[max(merged)] if merged else None

    def checkpoints(
        self, *, from_seq: int = 0, through_seq: int | None = None
    ) -> list[AuditCheckpoint]:
        merged = self._all_checkpoints()
        return [
            merged[s]
            for s in sorted(merged)
            if s >= from_seq and (through_seq is None or s <= through_seq)
        ]

    def delete_through(self, seq: int) -> int:
        before = len(self.query(AuditQuery(limit=2**31)))
        self.pending.delete_through(seq)
        self.pending.deleted_through = max(self.pending.deleted_through, seq)
        return before - len(self.query(AuditQuery(limit=2**31)))


def _seq(stored: StoredEvent) -> int:
    return stored.head.seq
