"""The audit hash chain: intact chains verify; edits, deletions and reordering are found."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.core.audit import (
    canonical_event,
    chain_events,
    chain_prepared,
    event_to_json,
    first_broken_seq,
    format_timestamp,
    prepare_event,
)
from bastion.core.jcs import canonical_text
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


TEXTS = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
PART_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXTS
    | st.sampled_from(["bk_live_abcdefgh12345678", "eyJhbGciOi.eyJzdWIiOi.sig", "\u00e9t\u00e9"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXTS, children, max_size=3),
    max_leaves=8,
)
PARTS = st.dictionaries(TEXTS | st.sampled_from(["id", "token", "type"]), PART_VALUES, max_size=4)


@settings(max_examples=300)
@given(
    parts=st.tuples(PARTS, PARTS, PARTS, PARTS),
    names=st.tuples(TEXTS, TEXTS, TEXTS),
    head=st.tuples(st.integers(min_value=0, max_value=2**40), st.sampled_from(["", "ab" * 32])),
    head_later=st.booleans(),
)
def test_text_encoded_around_the_chain_is_the_rfc8785_text(
    parts: tuple[dict[str, Any], ...],
    names: tuple[str, str, str],
    head: tuple[int, str],
    head_later: bool,
) -> None:
    """Whichever path an event takes (encoded ahead of the chain, or completely at chain
    time), and whether or not the chain moves its timestamp, the stored text is the general
    RFC 8785 encoding of the stored event and its hash verifies."""
    actor, resource, details, request = parts
    event = AuditEvent(
        event_id="evt_1",
        timestamp=NOW,
        tenant=names[0],
        action=names[1],
        outcome=names[2],
        actor=actor,
        resource=resource,
        details=details,
        request=request,
    )
    prepared = prepare_event(event)
    not_before = NOW + timedelta(seconds=1) if head_later else None
    [(stored, text)] = chain_prepared(*head, [prepared], not_before=not_before)
    assert stored.timestamp == (not_before or NOW)
    assert text == canonical_text(canonical_event(stored), simple=False)
    assert first_broken_seq([stored], start_hash=head[1]) is None


def test_plain_ascii_event_is_encoded_ahead_of_the_chain() -> None:
    event = events(1)[0]
    assert prepare_event(replace(event, details={"status": 200, "why": ["a"]})).encoded is not None
    assert prepare_event(replace(event, details={"ratio": 0.5})).encoded is None
    assert prepare_event(replace(event, details={"name": "\u00e9"})).encoded is None
    assert prepare_event(replace(event, details={"note": "bat_abcdefgh1234"})).encoded is None
