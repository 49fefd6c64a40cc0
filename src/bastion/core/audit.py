"""Audit events as JSON, the hash chain that makes the trail tamper-evident, and checkpoints.

An event's ``hash`` is SHA-256 over the previous event's hash followed by the RFC 8785
canonical JSON (`bastion.core.jcs`) of the event without its ``hash`` field. Changing,
removing or reordering any stored event breaks every hash after it. A checkpoint is a signed
statement "event ``seq`` has hash ``headHash``" (Ed25519, see `bastion.crypto.checkpoints`):
it pins every event up to ``seq`` through the chain, so even a log re-hashed from scratch by
someone without the signing key no longer matches it.

Chaining masks each event (`bastion.core.masking`) and encodes it once: that canonical text
is what the hash covers and what backends store as the body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from bastion.core.audit_policy import KEEP, Trim
from bastion.core.jcs import canonical_text, is_simple, simple_text
from bastion.core.masking import FieldMasker, has_credential_like, mask_parts
from bastion.core.model import AuditEvent

GENESIS_HASH = ""
PARTS = ("actor", "resource", "details", "request")
# Sequence numbers are signed 64-bit integers in every backend (SQL BIGINT).
MAX_SEQ = 2**63 - 1


def format_timestamp(moment: datetime) -> str:
    """``2024-01-15T10:30:00.000Z``: UTC with milliseconds, as in spec/000."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # In UTC, isoformat ends with "+00:00" after 23 characters of date and time (the year
    # has four digits): a third cheaper than formatting a naive copy.
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def parse_timestamp(text: str) -> datetime:
    """The inverse of `format_timestamp`; ValueError for any other spelling."""
    if len(text) != 24 or not text.endswith("Z"):
        raise ValueError(f"not an audit timestamp: {text!r}")
    moment = datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    if format_timestamp(moment) != text:
        raise ValueError(f"not an audit timestamp: {text!r}")
    return moment


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


def event_from_json(data: Mapping[str, Any]) -> AuditEvent:
    """An event back from `event_to_json`'s shape; ValueError if a field is missing or wrong."""
    try:
        strings = {k: data[k] for k in ("eventId", "tenant", "action", "outcome", "prevHash")}
        parts = {k: data[k] for k in PARTS}
        seq, digest = data["seq"], data["hash"]
        moment = parse_timestamp(data["timestamp"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an audit event: missing or invalid {exc}") from None
    if not all(isinstance(v, str) for v in (*strings.values(), digest)):
        raise ValueError("not an audit event: a text field is not a string")
    if not all(isinstance(v, dict) for v in parts.values()) or type(seq) is not int:
        raise ValueError("not an audit event: wrong field types")
    return AuditEvent(
        event_id=strings["eventId"],
        timestamp=moment,
        tenant=strings["tenant"],
        action=strings["action"],
        outcome=strings["outcome"],
        seq=seq,
        prev_hash=strings["prevHash"],
        hash=digest,
        **parts,
    )


def canonical_event(event: AuditEvent) -> dict[str, Any]:
    """What an event's hash covers: its JSON without ``hash``."""
    return {
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


def hash_canonical(
    prev_hash: str, value: dict[str, Any], *, simple: bool | None = None
) -> tuple[str, str]:
    """(canonical text of ``value``, SHA-256 of ``prev_hash`` + that text)."""
    text = canonical_text(value, simple=simple)
    try:
        data = (prev_hash + text).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the complete path writes U+FFFD
        text = canonical_text(value, simple=False)
        data = (prev_hash + text).encode("utf-8")
    return text, hashlib.sha256(data).hexdigest()


def event_hash(event: AuditEvent) -> str:
    """SHA-256 of the previous hash and the event's canonical JSON (without ``hash``)."""
    return hash_canonical(event.prev_hash, canonical_event(event))[1]


class PreparedEvent(NamedTuple):
    """An event's masked parts, ready to be chained; ``simple`` when the C encoder's JSON of
    them is already canonical (no floats, no huge integers, no keys beyond U+D7FF).

    ``encoded``, when set, is the event's canonical JSON around the three values only the
    chain decides (``prevHash``, ``seq``, ``timestamp``): see `encode_around_chain`.
    """

    source: AuditEvent
    actor: dict[str, Any]
    resource: dict[str, Any]
    details: dict[str, Any]
    request: dict[str, Any]
    simple: bool
    fields: FieldMasker | None = None
    encoded: tuple[str, str, str, str] | None = None


def prepare_event(
    event: AuditEvent, fields: FieldMasker | None = None, *, trim: Trim = KEEP
) -> PreparedEvent:
    """Mask ``event`` (less what ``trim`` leaves out) and encode it ahead of chaining.

    Encoding here, not in `chain_prepared`, lets it run beside the database work of the
    batch before (the group-commit writer prepares in the request's task).
    """
    actor, resource, details, request, simple = mask_parts(
        event, fields, strings=False, drop_reasons=trim.reasons, drop_user_agent=trim.user_agent
    )
    encoded = encode_around_chain(event, actor, resource, details, request) if simple else None
    return PreparedEvent(event, actor, resource, details, request, simple, fields, encoded)


def encode_around_chain(
    event: AuditEvent,
    actor: dict[str, Any],
    resource: dict[str, Any],
    details: dict[str, Any],
    request: dict[str, Any],
) -> tuple[str, str, str, str] | None:
    """(head, middle, tail, stamp) such that the canonical JSON of the chained event is
    ``head + prevHash + middle + str(seq) + tail + timestamp + '"}'``, where ``stamp`` is
    the timestamp's text unless chaining moves the event later.

    RFC 8785 sorts the top-level keys, so ``prevHash`` ends the first five and ``seq`` the
    next three. Only for simple parts (their C-encoded JSON is canonical) that are ASCII
    and show no credential-like string; None otherwise, and chaining takes the complete
    path. The three chain values are hex, digits and a timestamp, set between quotes and
    commas: they can neither add a credential-like string nor complete one.
    """
    first = simple_text(
        {
            "action": event.action,
            "actor": actor,
            "details": details,
            "eventId": event.event_id,
            "outcome": event.outcome,
            "prevHash": "",
        }
    )
    second = simple_text({"request": request, "resource": resource, "seq": 0})
    head = first[:-2]  # without '"}' after the empty prevHash
    middle = '",' + second[1:-2]  # without '{' and '0}'
    tail = ',"tenant":' + simple_text(event.tenant) + ',"timestamp":"'
    # Checked as one text: what joins the pieces (quotes, hex, digits) cannot complete a
    # credential-like string, so any piece shows one exactly when the joined text does.
    joined = head + middle + tail
    if not joined.isascii() or has_credential_like(joined):
        return None
    return head, middle, tail, format_timestamp(event.timestamp)


def chain_prepared(
    head_seq: int,
    head_hash: str,
    prepared: Iterable[PreparedEvent],
    *,
    not_before: datetime | None = None,
) -> list[tuple[AuditEvent, str]]:
    """Number, encode and hash prepared events after the head (seq, hash).

    Timestamps are made non-decreasing along the chain: an event is never recorded as
    earlier than ``not_before`` (the head's timestamp) or the event before it. Returns each
    stored event with its canonical JSON text (without ``hash``): the text its hash covers,
    which backends store as the event's body.
    """
    chained: list[tuple[AuditEvent, str]] = []
    seq, previous, floor = head_seq, head_hash, not_before
    stamp_of, stamp_text = None, ""
    sha256 = hashlib.sha256
    for item in prepared:
        source = item.source
        moment = source.timestamp if floor is None or source.timestamp >= floor else floor
        floor = moment
        seq += 1
        encoded = item.encoded
        if encoded is not None:
            head, middle, tail, stamp = encoded
            if moment is not source.timestamp:
                stamp = format_timestamp(moment)
            text = f'{head}{previous}{middle}{seq}{tail}{stamp}"}}'
        else:
            if moment != stamp_of:
                stamp_of, stamp_text = moment, format_timestamp(moment)
            item, text = _encode_completely(item, previous, seq, stamp_text)
        digest = sha256((previous + text).encode("utf-8")).hexdigest()
        linked = AuditEvent(
            source.event_id,
            moment,
            source.tenant,
            source.action,
            source.outcome,
            item.actor,
            item.resource,
            item.details,
            item.request,
            seq,
            previous,
            digest,
        )
        chained.append((linked, text))
        previous = digest
    return chained


def _encode_completely(
    item: PreparedEvent, previous: str, seq: int, stamp_text: str
) -> tuple[PreparedEvent, str]:
    """The canonical text of an event `encode_around_chain` left out (floats, non-ASCII,
    a credential-like string), masked again when needed; always UTF-8 encodable."""
    source = item.source
    value = {
        "action": source.action,
        "actor": item.actor,
        "details": item.details,
        "eventId": source.event_id,
        "outcome": source.outcome,
        "prevHash": previous,
        "request": item.request,
        "resource": item.resource,
        "seq": seq,
        "tenant": source.tenant,
        "timestamp": stamp_text,
    }
    text = canonical_text(value, simple=item.simple)
    if not text.isascii() or has_credential_like(text):
        item, text = _complete(item, value, text)
    try:
        (previous + text).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the complete path writes U+FFFD
        text = canonical_text(value, simple=False)
    return item, text


def _complete(item: PreparedEvent, value: dict[str, Any], text: str) -> tuple[PreparedEvent, str]:
    """The slow path: keys beyond U+D7FF sort by UTF-16 (is_simple decides), and a text that
    shows a credential-like string is masked again, strings too."""
    if item.simple and not text.isascii() and not is_simple(value):
        text = canonical_text(value, simple=False)
    if has_credential_like(text):
        parts = mask_parts(item.source, item.fields, strings=True)
        item = PreparedEvent(item.source, *parts, item.fields)
        value.update(
            actor=item.actor, resource=item.resource, details=item.details, request=item.request
        )
        text = canonical_text(value, simple=item.simple)
    return item, text


def chain_encoded(
    head_seq: int,
    head_hash: str,
    events: Iterable[AuditEvent],
    *,
    fields: FieldMasker | None = None,
    not_before: datetime | None = None,
) -> list[tuple[AuditEvent, str]]:
    """`prepare_event` then `chain_prepared`."""
    prepared = [prepare_event(event, fields) for event in events]
    return chain_prepared(head_seq, head_hash, prepared, not_before=not_before)


def chain_events(head_seq: int, head_hash: str, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Number and hash ``events`` so that they follow the stored head (seq, hash)."""
    return [event for event, _ in chain_encoded(head_seq, head_hash, events)]


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
