"""The audit hash chain: intact chains verify; edits, deletions and reordering are found."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bastion.core.audit import chain_events, event_to_json, first_broken_seq, format_timestamp
from bastion.core.model import AuditEvent

NOW = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)


def events(n: int) -> list[AuditEvent]:
    raw = [
        AuditEvent(
            event_id=f"evt_{i}",
            timestamp=NOW,
            tenant="t",
            action="pattern.execute",
            outcome="success",
            actor={"id": f"user{i}"},
        )
        for i in range(n)
    ]
    return chain_events(0, "", raw)


def test_spec_timestamp_format() -> None:
    assert format_timestamp(NOW) == "2024-01-15T10:30:00.123Z"


def test_chain_verifies_and_continues_from_head() -> None:
    first = events(3)
    more = chain_events(first[-1].seq, first[-1].hash, [replace(first[0], event_id="evt_x")])
    assert more[0].seq == 4 and more[0].prev_hash == first[-1].hash
    assert first_broken_seq(first + more) is None


def test_edited_field_detected() -> None:
    chain = events(5)
    chain[2] = replace(chain[2], actor={"id": "mallory"})
    assert first_broken_seq(chain) == 3


def test_deleted_event_detected() -> None:
    chain = events(5)
    del chain[1]
    assert first_broken_seq(chain) == 2


def test_reordered_events_detected() -> None:
    chain = events(5)
    chain[1], chain[2] = chain[2], chain[1]
    assert first_broken_seq(chain) == 2


def test_event_json_has_spec_shape() -> None:
    body = event_to_json(events(1)[0])
    assert list(body) == [
        "timestamp",
        "eventId",
        "tenant",
        "action",
        "outcome",
        "actor",
        "resource",
        "details",
        "request",
        "seq",
        "prevHash",
        "hash",
    ]
