"""The audit store contract on memory, SQLite and PostgreSQL: chain head, queries, concurrency."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest

from bastion.backends.audit_rows import sqlite_timestamp
from bastion.backends.protocols import Storage
from bastion.core.audit_checkpoint import AuditCheckpoint
from bastion.core.model import AuditEvent, AuditQuery
from bastion.errors import ConflictError, StorageError

from .factories import T0, Backend, make_event, make_tenant


def _insert(storage: Storage, events: list[AuditEvent]) -> None:
    with storage.transaction() as uow:
        uow.audit.insert(events)


def _query(storage: Storage, **filters: Any) -> list[int]:
    with storage.transaction() as uow:
        return [event.seq for event in uow.audit.query(AuditQuery(**filters))]


def _varied_events() -> list[AuditEvent]:
    """Ten events whose filterable fields vary with seq, so each filter picks a known set."""
    return [
        make_event(
            seq,
            tenant="acme" if seq % 2 else "globex",
            action=("patterns:read", "patterns:update", "auth:login")[seq % 3],
            outcome="failure" if seq in (3, 7) else "success",
            actor={"id": "bob" if seq > 5 else "alice", "type": "user"},
            resource={"type": "patterns", "id": "p2" if seq % 4 == 0 else "p1"},
        )
        for seq in range(1, 11)
    ]


def test_lock_head_on_empty_log(storage: Storage) -> None:
    with storage.transaction() as uow:
        assert uow.audit.lock_head() == (0, "")


def test_lock_head_after_three_events(storage: Storage) -> None:
    with storage.transaction() as uow:
        head = uow.audit.lock_head()
        uow.audit.insert([make_event(head[0] + n) for n in (1, 2, 3)])
        assert uow.audit.lock_head() == (3, "h3")
    with storage.transaction() as uow:
        assert uow.audit.lock_head() == (3, "h3")


def test_event_round_trips_exactly(storage: Storage) -> None:
    event = make_event(
        1,
        details={"unicode": "zoë ✓", "list": [1, "two", None], "deep": {"a": {"b": 2.25}}},
        request={"ip": "2001:db8::1", "headers": {"user-agent": "curl/8"}},
    )
    _insert(storage, [event])
    with storage.transaction() as uow:
        (stored,) = uow.audit.query(AuditQuery())
    assert stored == event
    assert stored.timestamp.utcoffset() == timedelta(0)


def test_an_event_whose_actor_and_resource_hold_a_nul_is_kept_whole_and_found(
    storage: Storage,
) -> None:
    """A name a client made up may hold U+0000, which PostgreSQL cannot store in a column: the
    event is still written (an unaudited failure would be worse), its body keeps every
    character, and a query by that actor or resource finds it on every backend."""
    event = make_event(
        1,
        actor={"id": "mallory\x00admin", "type": "anonymous"},
        resource={"type": "user", "id": "a\x00b"},
        details={"username": "mallory\x00admin"},
    )
    _insert(storage, [event, make_event(2)])
    with storage.transaction() as uow:
        (stored,) = uow.audit.query(AuditQuery(actor="mallory\x00admin"))
        assert uow.audit.query(AuditQuery(resource="user/a\x00b")) == [stored]
    assert stored == event


def test_an_event_whose_actor_and_resource_are_too_long_to_index_is_kept_whole_and_found(
    storage: Storage,
) -> None:
    """PostgreSQL's B-tree holds about 2,700 bytes a row; a client id of 9,000 random
    characters (which it cannot compress) is still an event, whole, found by its actor."""
    actor, ident = secrets.token_hex(4500), secrets.token_hex(4500)
    twin = actor[:-1] + ("0" if actor[-1] != "0" else "1")  # the same start, another id
    event = make_event(1, actor={"id": actor}, resource={"type": "client", "id": ident})
    _insert(storage, [event, make_event(2, actor={"id": twin})])
    with storage.transaction() as uow:
        (stored,) = uow.audit.query(AuditQuery(actor=actor))
        assert uow.audit.query(AuditQuery(resource=f"client/{ident}")) == [stored]
        assert [e.seq for e in uow.audit.query(AuditQuery(actor=twin))] == [2]
    assert stored == event


def test_duplicate_seq_or_event_id_is_conflict(storage: Storage) -> None:
    _insert(storage, [make_event(1)])
    with pytest.raises(ConflictError):
        _insert(storage, [make_event(2), make_event(1, event_id="evt-other")])
    with pytest.raises(ConflictError):
        _insert(storage, [make_event(2, event_id="evt-000001")])
    assert _query(storage) == [1]


def test_failed_insert_keeps_nothing_of_its_unit_of_work_even_if_the_caller_goes_on(
    storage: Storage,
) -> None:
    """A change must never commit without its events: once an insert has failed (part of
    the batch may already be written), leaving the block rolls everything back."""
    _insert(storage, [make_event(1)])
    spoiled = pytest.raises(StorageError, match="none of it was kept")
    with spoiled, storage.transaction() as uow:
        uow.tenants.create(make_tenant("changed-with-its-events"))
        uow.audit.insert([make_event(2)])
        with pytest.raises(ConflictError):
            uow.audit.insert([make_event(3), make_event(1, event_id="evt-other")])
        # A caller that swallows every error and goes on (on PostgreSQL this insert fails
        # too: the failed one aborted the transaction).
        with contextlib.suppress(StorageError):
            uow.audit.insert([make_event(4)])
    assert _query(storage) == [1]
    with storage.transaction() as uow:
        assert [t.name for t in uow.tenants.list()] == []
    _insert(storage, [make_event(2)])  # the storage itself is fine afterwards
    assert _query(storage) == [1, 2]


def test_body_that_is_not_json_is_refused(storage: Storage) -> None:
    with pytest.raises(StorageError):
        _insert(storage, [make_event(1, details={"when": object()})])
    assert _query(storage) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, list(range(1, 11))),
        ({"action": "auth:login"}, [2, 5, 8]),
        ({"actor": "bob"}, [6, 7, 8, 9, 10]),
        ({"resource": "patterns/p2"}, [4, 8]),
        ({"resource": "patterns"}, []),
        ({"outcome": "failure"}, [3, 7]),
        ({"tenant": "globex"}, [2, 4, 6, 8, 10]),
        ({"since": T0 + timedelta(seconds=4)}, [4, 5, 6, 7, 8, 9, 10]),
        ({"until": T0 + timedelta(seconds=4)}, [1, 2, 3]),
        ({"since": T0 + timedelta(seconds=2), "until": T0 + timedelta(seconds=5)}, [2, 3, 4]),
        ({"after_seq": 7}, [8, 9, 10]),
        ({"limit": 3}, [1, 2, 3]),
        ({"limit": 0}, []),
        ({"tenant": "acme", "actor": "bob"}, [7, 9]),
        ({"tenant": "acme", "outcome": "failure", "action": "patterns:read"}, [3]),
        ({"actor": "alice", "resource": "patterns/p1", "after_seq": 1, "limit": 2}, [2, 3]),
        ({"action": "patterns:update", "since": T0 + timedelta(seconds=5)}, [7, 10]),
    ],
)
def test_query_filters(storage: Storage, filters: dict[str, Any], expected: list[int]) -> None:
    _insert(storage, _varied_events())
    assert _query(storage, **filters) == expected


def test_query_is_ordered_by_seq_not_insert_order(storage: Storage) -> None:
    _insert(storage, [make_event(3), make_event(1)])
    _insert(storage, [make_event(2)])
    assert _query(storage) == [1, 2, 3]


def test_after_seq_pages_through_everything(storage: Storage) -> None:
    _insert(storage, [make_event(seq) for seq in range(1, 24)])
    seen: list[int] = []
    after = 0
    while page := _query(storage, after_seq=after, limit=5):
        seen.extend(page)
        after = page[-1]
    assert seen == list(range(1, 24))


@pytest.mark.parametrize("batch", [1000, 7])
def test_iterate_in_batches(storage: Storage, batch: int) -> None:
    _insert(storage, [make_event(seq) for seq in range(1, 2501)])
    with storage.transaction() as uow:
        seqs = [event.seq for event in uow.audit.iterate(batch=batch)]
        tail = [event.seq for event in uow.audit.iterate(after_seq=2400, batch=batch)]
    assert seqs == list(range(1, 2501))
    assert tail == list(range(2401, 2501))


def test_concurrent_chaining_has_no_gap_or_duplicate(backend: Backend) -> None:
    """Two writers (separate storages, as two processes) each chain 50 events, one at a time."""
    storages = [backend.open(), backend.open()]
    storages[0].migrate()
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def chain(storage: Storage, writer: int) -> None:
        try:
            start.wait()
            for n in range(50):
                with storage.transaction() as uow:
                    seq, last_hash = uow.audit.lock_head()
                    event = make_event(
                        seq + 1, event_id=f"w{writer}-{n}", prev_hash=last_hash, hash=f"h{seq + 1}"
                    )
                    uow.audit.insert([event])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=chain, args=(s, i)) for i, s in enumerate(storages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with storages[0].transaction() as uow:
        events = list(uow.audit.iterate())
    assert [event.seq for event in events] == list(range(1, 101))
    assert all(event.prev_hash == f"h{event.seq - 1}" for event in events[1:])
    assert {event.event_id[:2] for event in events} == {"w0", "w1"}


# --- heads, bodies, bounds, checkpoints and retention deletes (issue 6) -------------------


def _checkpoint(seq: int, **kw: Any) -> AuditCheckpoint:
    fields: dict[str, Any] = {
        "seq": seq,
        "head_hash": f"h{seq}",
        "timestamp": T0 + timedelta(seconds=seq, milliseconds=500),
        "key_id": "0123456789abcdef",
        "signature": f"sig{seq}",
    }
    return AuditCheckpoint(**(fields | kw))


def test_head_and_head_timestamp_without_locking(storage: Storage) -> None:
    with storage.transaction() as uow:
        assert uow.audit.head() == (0, "") and uow.audit.head_timestamp() is None
    _insert(storage, [make_event(seq) for seq in (1, 2, 3)])
    with storage.transaction() as uow:
        assert uow.audit.head() == (3, "h3")
        assert uow.audit.head_timestamp() == T0 + timedelta(seconds=3)


def test_head_timestamp_keeps_microseconds_and_comes_back_in_utc(storage: Storage) -> None:
    # Written with another offset, read back as the same instant, aware and in UTC, to the
    # microsecond (SQLite keeps naive UTC text, PostgreSQL a timestamptz).
    moment = (T0 + timedelta(seconds=1, microseconds=123456)).astimezone(
        timezone(timedelta(hours=5, minutes=30))
    )
    _insert(storage, [make_event(1, timestamp=moment)])
    with storage.transaction() as uow:
        assert uow.audit.head() == (1, "h1")
        stamp = uow.audit.head_timestamp()
    assert stamp == moment and stamp is not None and stamp.tzinfo is UTC
    assert stamp.microsecond == 123456


def test_insert_with_bodies_stores_them_and_reads_back_the_parts(storage: Storage) -> None:
    event = make_event(1)
    body = json.dumps(
        {
            "action": event.action,
            "actor": event.actor,
            "details": event.details,
            "request": event.request,
            "resource": event.resource,
            "extra": "kept in the body, not part of the event",
        }
    )
    with storage.transaction() as uow:
        uow.audit.insert([event], bodies=[body])
    with storage.transaction() as uow:
        assert uow.audit.query(AuditQuery()) == [event]


def test_bounds_and_iterate_through(storage: Storage) -> None:
    with storage.transaction() as uow:
        assert uow.audit.bounds() is None
    _insert(storage, [make_event(seq) for seq in range(1, 11)])
    with storage.transaction() as uow:
        assert uow.audit.bounds() == (1, 10)
        assert [e.seq for e in uow.audit.iterate(after_seq=3, through_seq=6, batch=2)] == [
            4,
            5,
            6,
        ]


def test_iterate_indexed_returns_the_index_columns(storage: Storage) -> None:
    _insert(storage, _varied_events()[:3])
    with storage.transaction() as uow:
        rows = list(uow.audit.iterate_indexed())
    assert [(r.event.seq, r.actor_id, r.resource_key) for r in rows] == [
        (1, "alice", "patterns/p1"),
        (2, "alice", "patterns/p1"),
        (3, "alice", "patterns/p1"),
    ]


def test_iterate_indexed_returns_the_timestamp_text_where_it_is_text(
    storage: Storage, backend: Backend
) -> None:
    """SQLite keeps the timestamp as text, which time filters compare: it comes back as
    stored, the text bastion writes; a typed column (PostgreSQL, memory) gives None."""
    _insert(storage, _varied_events()[:2])
    with storage.transaction() as uow:
        texts = [row.timestamp_text for row in uow.audit.iterate_indexed()]
    if backend.name == "sqlite":
        assert texts == [sqlite_timestamp(e.timestamp) for e in _varied_events()[:2]]
    else:
        assert texts == [None, None]


def test_checkpoints_round_trip_in_seq_order(storage: Storage) -> None:
    with storage.transaction() as uow:
        assert uow.audit.last_checkpoint() is None
        for seq in (20, 10, 30):
            uow.audit.insert_checkpoint(_checkpoint(seq))
    with storage.transaction() as uow:
        assert [c.seq for c in uow.audit.checkpoints()] == [10, 20, 30]
        assert [c.seq for c in uow.audit.checkpoints(from_seq=15, through_seq=25)] == [20]
        assert uow.audit.last_checkpoint() == _checkpoint(30)
        stored = uow.audit.checkpoints()[0]
    assert stored == _checkpoint(10) and stored.timestamp.utcoffset() == timedelta(0)


def test_second_checkpoint_at_a_seq_is_conflict(storage: Storage) -> None:
    with storage.transaction() as uow:
        uow.audit.insert_checkpoint(_checkpoint(5))
    with pytest.raises(ConflictError), storage.transaction() as uow:
        uow.audit.insert_checkpoint(_checkpoint(5, signature="other"))
    with storage.transaction() as uow:
        assert uow.audit.checkpoints() == [_checkpoint(5)]


def test_checkpoint_rolls_back_with_its_unit_of_work(storage: Storage) -> None:
    with pytest.raises(RuntimeError), storage.transaction() as uow:
        uow.audit.insert_checkpoint(_checkpoint(1))
        raise RuntimeError("abort")
    with storage.transaction() as uow:
        assert uow.audit.last_checkpoint() is None


def test_delete_through_keeps_the_anchor_checkpoint(storage: Storage) -> None:
    _insert(storage, [make_event(seq) for seq in range(1, 11)])
    with storage.transaction() as uow:
        for seq in (3, 6, 9):
            uow.audit.insert_checkpoint(_checkpoint(seq))
    with storage.transaction() as uow:
        assert uow.audit.delete_through(6) == 6
        assert [e.seq for e in uow.audit.iterate()] == [7, 8, 9, 10]
    with storage.transaction() as uow:
        assert uow.audit.bounds() == (7, 10)
        assert [c.seq for c in uow.audit.checkpoints()] == [6, 9]
        assert uow.audit.head() == (10, "h10")


def test_delete_through_rolls_back(storage: Storage) -> None:
    _insert(storage, [make_event(seq) for seq in range(1, 6)])
    with pytest.raises(RuntimeError), storage.transaction() as uow:
        uow.audit.delete_through(4)
        raise RuntimeError("abort")
    assert _query(storage) == [1, 2, 3, 4, 5]


def test_time_bounds_on_a_large_trail(storage: Storage) -> None:
    _insert(storage, [make_event(seq) for seq in range(1, 301)])
    assert _query(storage, since=T0 + timedelta(seconds=295)) == [295, 296, 297, 298, 299, 300]
    assert _query(storage, until=T0 + timedelta(seconds=3)) == [1, 2]
    assert _query(storage, since=T0 + timedelta(days=1)) == []
    assert _query(storage, actor="alice", since=T0 + timedelta(seconds=299), limit=5) == [299, 300]
