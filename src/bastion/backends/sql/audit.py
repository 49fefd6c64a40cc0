"""The SQL audit store: chain head locking, batched inserts, filtered queries."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, insert, select, text

from bastion.backends.audit_rows import actor_id, encode_body, resource_key
from bastion.backends.sql.errors import translated
from bastion.backends.sql.tables import audit_events
from bastion.core.model import AuditEvent, AuditQuery

# pg_advisory_xact_lock key for the audit chain head (the bytes b"bastaud1" as a bigint).
AUDIT_CHAIN_LOCK = int.from_bytes(b"bastaud1", "big")


def _event(row: Row[Any]) -> AuditEvent:
    body = json.loads(row.body)
    return AuditEvent(
        event_id=row.event_id,
        timestamp=row.timestamp,
        tenant=row.tenant,
        action=row.action,
        outcome=row.outcome,
        actor=body["actor"],
        resource=body["resource"],
        details=body["details"],
        request=body["request"],
        seq=int(row.seq),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    c = audit_events.c
    where: list[ColumnElement[bool]] = []
    if query.since is not None:
        where.append(c.timestamp >= query.since)
    if query.until is not None:
        where.append(c.timestamp < query.until)
    if query.action is not None:
        where.append(c.action == query.action)
    if query.actor is not None:
        where.append(c.actor_id == query.actor)
    if query.resource is not None:
        where.append(c.resource_key == query.resource)
    if query.outcome is not None:
        where.append(c.outcome == query.outcome)
    if query.tenant is not None:
        where.append(c.tenant == query.tenant)
    if query.after_seq is not None:
        where.append(c.seq > query.after_seq)
    return where


class SQLAuditStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock_head(self) -> tuple[int, str]:
        head = select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc())
        with translated("lock the audit chain"):
            if self._conn.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                self._conn.execute(lock, {"key": AUDIT_CHAIN_LOCK})
            # On SQLite the unit of work's BEGIN IMMEDIATE already holds the write lock.
            row = self._conn.execute(head.limit(1)).one_or_none()
        return (0, "") if row is None else (int(row.seq), str(row.hash))

    def insert(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        rows = [
            {
                "seq": event.seq,
                "event_id": event.event_id,
                "timestamp": event.timestamp,
                "tenant": event.tenant,
                "action": event.action,
                "outcome": event.outcome,
                "actor_id": actor_id(event),
                "resource_key": resource_key(event),
                "body": encode_body(event),
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
            for event in events
        ]
        # The savepoint makes a batch all-or-nothing on every database.
        with translated("insert audit events"), self._conn.begin_nested():
            self._conn.execute(insert(audit_events), rows)

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        if query.limit <= 0:
            return []
        statement = (
            select(audit_events)
            .where(*_filters(query))
            .order_by(audit_events.c.seq)
            .limit(query.limit)
        )
        with translated("query audit events"):
            return [_event(row) for row in self._conn.execute(statement)]

    def iterate(self, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEvent]:
        last = after_seq
        size = max(batch, 1)
        while True:
            page = self.query(AuditQuery(after_seq=last, limit=size))
            yield from page
            if len(page) < size:
                return
            last = page[-1].seq
