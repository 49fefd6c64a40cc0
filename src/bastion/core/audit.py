"""Audit events as JSON, and the hash chain that makes the trail tamper-evident.

Each event's ``hash`` is SHA-256 over the previous event's hash and the canonical JSON of the
event without its ``hash`` field (keys sorted, no white space, UTF-8: the RFC 8785 form for the
strings, integers, booleans and nulls bastion puts in events). Changing, removing or reordering
any stored event breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bastion.core.model import AuditEvent

GENESIS_HASH = ""


def format_timestamp(moment: datetime) -> str:
    """``2024-01-15T10:30:00.000Z``: UTC with milliseconds, as in spec/000."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """The spec/000 JSON shape plus ``tenant``, ``seq``, ``prevHash`` and ``hash``."""
    return {
        "timestamp": format_timestamp(event.timestamp),
        "eventId": event.event_id,
        "tenant": event.tenant,
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor,
        "resource": event.resource,
        "details": event.details,
        "request": event.request,
        "seq": event.seq,
        "prevHash": event.prev_hash,
        "hash": event.hash,
    }


def canonical_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    body = event_to_json(event)
    del body["hash"]
    return hashlib.sha256(event.prev_hash.encode() + canonical_json(body)).hexdigest()


def chain_events(head_seq: int, head_hash: str, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Number and hash ``events`` so that they follow the stored head (seq, hash)."""
    chained: list[AuditEvent] = []
    seq, previous = head_seq, head_hash
    for event in events:
        seq += 1
        linked = replace(event, seq=seq, prev_hash=previous, hash="")
        linked = replace(linked, hash=event_hash(linked))
        chained.append(linked)
        previous = linked.hash
    return chained


def first_broken_seq(events: Sequence[AuditEvent], *, start_hash: str = GENESIS_HASH) -> int | None:
    """The seq of the first event that does not verify, or None when the chain is intact."""
    previous = start_hash
    expected_seq = events[0].seq if events else 0
    for event in events:
        if event.seq != expected_seq or event.prev_hash != previous:
            return event.seq if event.seq == expected_seq else expected_seq
        if event_hash(event) != event.hash:
            return event.seq
        previous = event.hash
        expected_seq += 1
    return None
