"""The SQL audit store: chain head locking, bulk inserts, filtered queries, checkpoints and
retention deletes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    ScalarSelect,
    String,
    case,
    delete,
    func,
    insert,
    select,
    text,
    type_coerce,
)

from bastion.backends.audit_rows import filter_text
from bastion.backends.protocols import IndexedAuditRow
from bastion.backends.sql.audit_raw import insert_rows, read_head, rows_of
from bastion.backends.sql.audit_tables import audit_checkpoints
from bastion.backends.sql.errors import translated
from bastion.backends.sql.tables import audit_events
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.model import AuditEvent, AuditQuery

_SEQ_CEILING = 2**62
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


def _checkpoint(row: Row[Any]) -> AuditCheckpoint:
    return AuditCheckpoint(
        seq=int(row.seq),
        head_hash=row.head_hash,
        timestamp=row.created_at,
        key_id=row.key_id,
        signature=row.signature,
    )


def _boundary(moment: datetime) -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """Where ``moment`` falls along seq, found twice with two index seeks each: the first seq
    at the lowest timestamp at or after it, and the seq after the last one at the highest
    timestamp before it (NULL where there is no such event).

    Both are the same seq while every timestamp is as bastion writes it. On SQLite the column
    is text, and an event whose text was re-spelled (the same instant with a ``T`` or an
    offset, which verification reports) sorts elsewhere than its time: either seek alone
    could take that one event for the boundary and skip every event in between, but one
    such event cannot move both the same way. The filters still compare each event's text.
    """
    c = audit_events.c
    at_or_after = select(func.min(c.timestamp)).where(c.timestamp >= moment).scalar_subquery()
    first = select(func.min(c.seq)).where(c.timestamp == at_or_after).scalar_subquery()
    before = select(func.max(c.timestamp)).where(c.timestamp < moment).scalar_subquery()
    after_last = select(func.max(c.seq) + 1).where(c.timestamp == before).scalar_subquery()
    return first, after_last


def _first_seq_at(moment: datetime) -> ColumnElement[Any]:
    """A seq at or below every event whose timestamp is at or after ``moment``: the lower of
    the two boundaries."""
    first, after_last = _boundary(moment)
    after = func.coalesce(after_last, 1)
    return case((first < after, first), else_=after)


def _seq_after(moment: datetime) -> ColumnElement[Any]:
    """A seq above every event whose timestamp is before ``moment``: the higher of the two
    boundaries (the ceiling when no event is at or after it)."""
    first, after_last = _boundary(moment)
    bound = func.coalesce(first, _SEQ_CEILING)
    return case((bound < after_last, after_last), else_=bound)


def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    c = audit_events.c
    where: list[ColumnElement[bool]] = []
    # Timestamps never decrease along seq, so time bounds are also seq bounds: every filter
    # index (column, seq) then reads only the matching range, already in seq order.
    if query.since is not None:
        where.append(c.seq >= _first_seq_at(query.since))
        where.append(c.timestamp >= query.since)
    if query.until is not None:
        where.append(c.seq < _seq_after(query.until))
        where.append(c.timestamp < query.until)
    if query.action is not None:
        where.append(c.action == query.action)
    if query.actor is not None:
        where.append(c.actor_id == filter_text(query.actor))
    if query.resource is not None:
        where.append(c.resource_key == filter_text(query.resource))
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
        # What failed part-way in this unit of work; `SQLStorage.transaction` then rolls the
        # whole unit back instead of committing it (see `insert`).
        self.spoiled: str | None = None
        # The head row's timestamp as `head` last read it in this unit of work (None: unknown),
        # so that `head_timestamp` right after `lock_head` costs no second query.
        self._head_timestamp: tuple[datetime | None] | None = None

    def lock_head(self) -> tuple[int, str]:
        with translated("lock the audit chain"):
            if self._conn.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                self._conn.execute(lock, {"key": AUDIT_CHAIN_LOCK})
            # On SQLite the unit of work's BEGIN IMMEDIATE already holds the write lock.
        return self.head()

    def head(self) -> tuple[int, str]:
        with translated("read the audit chain head"):
            row = read_head(self._conn)
        if row is None:
            self._head_timestamp = (None,)
            return (0, "")
        seq, digest, moment = row
        self._head_timestamp = (moment,)
        return (seq, digest)

    def head_timestamp(self) -> datetime | None:
        if self._head_timestamp is None:
            self.head()
        assert self._head_timestamp is not None
        return self._head_timestamp[0]

    def insert(self, events: Sequence[AuditEvent], *, bodies: Sequence[str] | None = None) -> None:
        if not events:
            return
        self._head_timestamp = None
        rows = rows_of(events, bodies, sqlite=self._conn.dialect.name == "sqlite")
        # All or nothing without a savepoint: a failed insert may have stored some rows, so
        # it spoils the unit of work, which then rolls back whatever the caller does. (A
        # savepoint copied every page the batch touched to a sub-journal first: a fifth of
        # the audit writer's time at the batch sizes a busy gateway makes.)
        try:
            with translated("insert audit events"):
                insert_rows(self._conn, rows)
        except BaseException:
            self.spoiled = "insert audit events"
            raise

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

    def iterate(
        self, *, after_seq: int = 0, batch: int = 1000, through_seq: int | None = None
    ) -> Iterator[AuditEvent]:
        for row in self.iterate_indexed(after_seq=after_seq, batch=batch, through_seq=through_seq):
            yield row.event

    def iterate_indexed(
        self, *, after_seq: int = 0, batch: int = 1000, through_seq: int | None = None
    ) -> Iterator[IndexedAuditRow]:
        last = after_seq
        size = max(batch, 1)
        c = audit_events.c
        sqlite = self._conn.dialect.name == "sqlite"
        columns: list[Any] = [audit_events]
        if sqlite:  # the column as stored, not as it parses
            columns.append(type_coerce(c.timestamp, String).label("timestamp_text"))
        while True:
            statement = select(*columns).where(c.seq > last)
            if through_seq is not None:
                statement = statement.where(c.seq <= through_seq)
            statement = statement.order_by(c.seq).limit(size)
            with translated("read audit events"):
                page = [
                    IndexedAuditRow(
                        _event(row),
                        row.actor_id,
                        row.resource_key,
                        row.timestamp_text if sqlite else None,
                    )
                    for row in self._conn.execute(statement)
                ]
            yield from page
            if len(page) < size:
                return
            last = page[-1].event.seq

    def bounds(self) -> tuple[int, int] | None:
        c = audit_events.c
        with translated("read the audit bounds"):
            row = self._conn.execute(select(func.min(c.seq), func.max(c.seq))).one()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def insert_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        values = {
            "seq": checkpoint.seq,
            "head_hash": checkpoint.head_hash,
            "created_at": checkpoint.timestamp,
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
        }
        with translated("insert audit checkpoint"), self._conn.begin_nested():
            self._conn.execute(insert(audit_checkpoints).values(values))

    def last_checkpoint(self) -> AuditCheckpoint | None:
        statement = select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
        with translated("read the last audit checkpoint"):
            row = self._conn.execute(statement).one_or_none()
        return None if row is None else _checkpoint(row)

    def checkpoints(
        self, *, from_seq: int = 0, through_seq: int | None = None
    ) -> list[AuditCheckpoint]:
        c = audit_checkpoints.c
        statement = select(audit_checkpoints).where(c.seq >= from_seq)
        if through_seq is not None:
            statement = statement.where(c.seq <= through_seq)
        with translated("read audit checkpoints"):
            return [_checkpoint(r) for r in self._conn.execute(statement.order_by(c.seq))]

    def delete_through(self, seq: int) -> int:
        self._head_timestamp = None
        with translated("delete old audit events"):
            removed = self._conn.execute(delete(audit_events).where(audit_events.c.seq <= seq))
            self._conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq < seq))
        return int(removed.rowcount or 0)
