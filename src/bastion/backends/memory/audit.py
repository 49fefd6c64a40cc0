"""The in-memory audit log and its store, mirroring `bastion.backends.sql.audit`."""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bastion.backends.audit_rows import actor_id, encode_body, resource_key
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
        parts: dict[str, Any] = json.loads(self.body)
        return replace(self.head, **parts)


@dataclass
class AuditLog:
    """Committed events ordered by seq, with the unique seq and event id sets."""

    events: list[StoredEvent] = field(default_factory=list)
    seqs: set[int] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)

    def add(self, stored: StoredEvent) -> None:
        self.seqs.add(stored.head.seq)
        self.event_ids.add(stored.head.event_id)
        if not self.events or self.events[-1].head.seq < stored.head.seq:
            self.events.append(stored)
        else:
            bisect.insort(self.events, stored, key=lambda s: s.head.seq)


def _matches(stored: StoredEvent, query: AuditQuery) -> bool:
    head = stored.head
    checks = (
        query.since is None or head.timestamp >= query.since,
        query.until is None or head.timestamp < query.until,
        query.action is None or head.action == query.action,
        query.actor is None or stored.actor_id == query.actor,
        query.resource is None or stored.resource_key == query.resource,
        query.outcome is None or head.outcome == query.outcome,
        query.tenant is None or head.tenant == query.tenant,
    )
    return all(checks)


class MemoryAuditStore:
    """Reads see the committed log plus this unit of work's pending events."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self.pending = AuditLog()

    def lock_head(self) -> tuple[int, str]:
        # The storage lock held by the unit of work already serialises every writer.
        heads = [log.events[-1].head for log in (self._log, self.pending) if log.events]
        if not heads:
            return (0, "")
        head = max(heads, key=lambda event: event.seq)
        return (head.seq, head.hash)

    def insert(self, events: Sequence[AuditEvent]) -> None:
        stored = [self._stored(event) for event in events]
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
    def _stored(event: AuditEvent) -> StoredEvent:
        head = replace(
            event,
            timestamp=utc(event.timestamp, "insert audit events"),
            actor={},
            resource={},
            details={},
            request={},
        )
        return StoredEvent(head, actor_id(event), resource_key(event), encode_body(event))

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        if query.since is not None:
            utc(query.since, "query audit events")
        if query.until is not None:
            utc(query.until, "query audit events")
        if query.limit <= 0:
            return []
        after = query.after_seq
        found: list[StoredEvent] = []
        for log in (self._log, self.pending):
            start = 0 if after is None else bisect.bisect_right(log.events, after, key=_seq)
            events = log.events
            matching = (events[i] for i in range(start, len(events)) if _matches(events[i], query))
            # Each log is in seq order, so at most `limit` of each can be in the answer.
            found.extend(itertools.islice(matching, query.limit))
        found.sort(key=_seq)
        return [stored.event() for stored in found[: query.limit]]

    def iterate(self, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEvent]:
        last = after_seq
        size = max(batch, 1)
        while True:
            page = self.query(AuditQuery(after_seq=last, limit=size))
            yield from page
            if len(page) < size:
                return
            last = page[-1].seq


def _seq(stored: StoredEvent) -> int:
    return stored.head.seq
