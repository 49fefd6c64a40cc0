"""An attacker with write access to the audit tables (or an export file): edits, deletes,
reorders, truncates, and re-hashes the chain from scratch without the signing key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import create_engine, text

from bastion.backends.memory import MemoryStorage
from bastion.backends.memory.audit import StoredEvent
from bastion.backends.protocols import Storage
from bastion.core.audit import chain_encoded, event_from_json, event_hash, event_to_json
from bastion.core.model import AuditEvent
from bastion.services.audit import RecordingStorage


class Tamper:
    """Direct writes to the stored trail, below bastion."""

    def __init__(self, storage: Storage, url: str) -> None:
        inner = storage.inner if isinstance(storage, RecordingStorage) else storage
        self._storage = inner
        self._memory = inner if isinstance(inner, MemoryStorage) else None
        self._engine = None if self._memory is not None else create_engine(url)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _sql(self, statement: str, **params: Any) -> Any:
        assert self._engine is not None
        with self._engine.begin() as conn:
            return conn.execute(text(statement), params)

    def events(self) -> list[AuditEvent]:
        with self._storage.transaction() as tx:
            return list(tx.audit.iterate())

    def event(self, seq: int) -> AuditEvent:
        return next(e for e in self.events() if e.seq == seq)

    def write(self, event: AuditEvent, *, index_actor: str | None = None) -> None:
        """Overwrite the stored event with the same seq (columns and body)."""
        actor = str(event.actor.get("id", "")) if index_actor is None else index_actor
        resource = event.resource
        key = f"{resource.get('type')}/{resource.get('id')}" if resource.get("type") else ""
        body = json.dumps(
            {p: getattr(event, p) for p in ("actor", "resource", "details", "request")}
        )
        if self._memory is not None:
            log = self._memory._log
            for index, stored in enumerate(log.events):
                if stored.head.seq == event.seq:
                    head = replace(event, actor={}, resource={}, details={}, request={})
                    log.events[index] = StoredEvent(head, actor, key, body)
            return
        self._sql(
            "UPDATE audit_events SET event_id = :eid, action = :action, outcome = :outcome,"
            " tenant = :tenant, actor_id = :actor, resource_key = :key, body = :body,"
            " prev_hash = :prev, hash = :hash WHERE seq = :seq",
            eid=event.event_id,
            action=event.action,
            outcome=event.outcome,
            tenant=event.tenant,
            actor=actor,
            key=key,
            body=body,
            prev=event.prev_hash,
            hash=event.hash,
            seq=event.seq,
        )

    def delete(self, *seqs: int) -> None:
        if self._memory is not None:
            log = self._memory._log
            log.events = [s for s in log.events if s.head.seq not in seqs]
            return
        for seq in seqs:
            self._sql("DELETE FROM audit_events WHERE seq = :seq", seq=seq)

    def delete_checkpoints(self, *, from_seq: int) -> None:
        if self._memory is not None:
            log = self._memory._log
            log.checkpoints = {s: c for s, c in log.checkpoints.items() if s < from_seq}
            return
        self._sql("DELETE FROM audit_checkpoints WHERE seq >= :seq", seq=from_seq)

    # The attacks -----------------------------------------------------------------------

    def edit(self, seq: int, change: Callable[[AuditEvent], AuditEvent]) -> None:
        self.write(change(self.event(seq)))

    def swap(self, a: int, b: int) -> None:
        first, second = self.event(a), self.event(b)
        self.write(replace(second, seq=a, event_id="evt_swapping"))
        self.write(replace(first, seq=b))
        self.write(replace(second, seq=a))

    def truncate(self, *, from_seq: int) -> None:
        self.delete(*[e.seq for e in self.events() if e.seq >= from_seq])

    def rehash_from(self, seq: int, change: Callable[[AuditEvent], AuditEvent]) -> None:
        """Change event ``seq`` and recompute every hash after it (no signing key needed)."""
        events = [e for e in self.events() if e.seq >= seq]
        previous = self.event(seq - 1).hash if seq > 1 else ""
        changed = [change(events[0]), *events[1:]]
        rechained = chain_encoded(seq - 1, previous, changed)
        for event, _ in rechained:
            self.write(event)
        assert all(event_hash(e) == e.hash for e, _ in rechained)


def rehash_export_lines(lines: list[str], *, from_seq: int, new_actor: str) -> list[str]:
    """The same attack on an NDJSON export: edit one event, re-hash all after it."""
    out, previous = [], None
    for line in lines:
        record = json.loads(line)
        if "seq" not in record or "auditCheckpoint" in record:
            out.append(line)
            continue
        event = event_from_json(record)
        if event.seq >= from_seq:
            if event.seq == from_seq:
                event = replace(event, actor={**event.actor, "id": new_actor})
            event = replace(event, prev_hash=previous if previous is not None else event.prev_hash)
            event = replace(event, hash=event_hash(event))
        previous = event.hash
        out.append(json.dumps(event_to_json(event)))
    return out
