"""The two sides of the append benchmark: plain inserts of the events, and bastion's path."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from bastion.backends.protocols import Storage
from bastion.core.audit import format_timestamp
from bastion.core.model import AuditEvent
from bastion.services.audit import RecordingStorage
from bastion.services.audit.recorder import append_prepared_to
from bastion.services.audit.writer import GroupCommitWriter


def plain_row_body(event: AuditEvent) -> str:
    """The same body bastion stores (the event's JSON), encoded plainly by the encoder bastion
    uses (orjson): no masking, no canonical-form checks; ``seq`` and the hash fields are
    already set."""
    return orjson.dumps(
        {
            "action": event.action,
            "actor": event.actor,
            "details": event.details,
            "eventId": event.event_id,
            "outcome": event.outcome,
            "prevHash": event.prev_hash,
            "request": event.request,
            "resource": event.resource,
            "seq": event.seq,
            "tenant": event.tenant,
            "timestamp": format_timestamp(event.timestamp),
        }
    ).decode()


def plain_round(storage: Storage, events: list[AuditEvent], batch: int) -> None:
    """Plain inserts of the same rows: numbered events, the same JSON body and columns, the
    same driver path and one durable commit a batch; no masking, no chain, no signing."""
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        bodies = [plain_row_body(event) for event in chunk]
        with storage.transaction() as tx:
            tx.audit.insert(chunk, bodies=bodies)


def recorded_round(storage: RecordingStorage, events: list[AuditEvent], batch: int) -> None:
    """bastion: level + masking + RFC 8785 encoding, then chain, insert and seal per batch."""
    recorder = storage.recorder
    for start in range(0, len(events), batch):
        prepared = [recorder.prepare_request_event(e) for e in events[start : start + batch]]
        with storage.transaction() as tx:
            append_prepared_to(tx, [p for p in prepared if p is not None])


class PlainGroupWriter(GroupCommitWriter[tuple[AuditEvent, str]]):
    """The group-commit writer's own mechanics (`GroupCommitWriter`: queue, futures, one
    batch in a worker thread while the next is queued) with plain inserts: the baseline for
    `GroupCommitAuditWriter`. Like bastion's, it encodes each event in the producer."""

    def __init__(self, storage: Storage, *, max_batch: int = 5000) -> None:
        super().__init__(max_batch=max_batch)
        self._storage = storage

    def prepare(self, event: AuditEvent) -> tuple[AuditEvent, str]:
        return event, plain_row_body(event)

    def write(self, items: list[tuple[AuditEvent, str]]) -> Sequence[int]:
        with self._storage.transaction() as tx:
            tx.audit.insert([event for event, _ in items], bodies=[body for _, body in items])
        return ()
