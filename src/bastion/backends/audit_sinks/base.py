"""What every audit destination implements, and the records they carry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bastion.core.audit import parse_timestamp
from bastion.core.audit_checkpoint import AuditCheckpoint, checkpoint_from_json

Record = Mapping[str, Any]
CHECKPOINT_KEY = "auditCheckpoint"


class DeliveryError(Exception):
    """A destination did not take a batch; ``reason`` is safe to show (no secret, no event)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RecordRefusedError(DeliveryError):
    """The destination can never take ``records[index]`` (too large, not an audit event).

    The records before it were delivered. Retrying cannot help, so delivery drops that one
    record, counts and logs it, and goes on with the next: one bad record must not block
    every later event.
    """

    def __init__(self, reason: str, *, index: int) -> None:
        self.index = index
        super().__init__(reason)


class BatchTooLargeError(DeliveryError):
    """The destination took none of a batch of several records because it is too large
    (HTTP 413). Delivery halves its batches and tries again at once."""


class Destination(Protocol):
    name: str

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        """Deliver every record, or raise `DeliveryError` (the batch is then retried whole),
        `BatchTooLargeError` (retried in smaller batches) or `RecordRefusedError` (the records
        before the refused one count as delivered)."""

    def close(self) -> None: ...


def is_checkpoint(record: Record) -> bool:
    return CHECKPOINT_KEY in record


def checkpoint_of(record: Record) -> AuditCheckpoint:
    return checkpoint_from_json(record[CHECKPOINT_KEY])


def record_time(record: Record) -> datetime:
    """When the record's event happened (or its checkpoint was signed)."""
    source = record[CHECKPOINT_KEY] if is_checkpoint(record) else record
    return parse_timestamp(str(source["timestamp"]))


def record_kind(record: Record) -> str:
    """The action of an event, ``audit.checkpoint`` for a checkpoint."""
    return "audit.checkpoint" if is_checkpoint(record) else str(record.get("action", ""))
