"""Audit checkpoints: signed statements that event ``seq`` has hash ``headHash``.

A checkpoint pins every event up to its seq through the hash chain. The signature is
Ed25519 (`bastion.crypto.checkpoints`) over `checkpoint_payload`: a domain label and the
RFC 8785 canonical JSON of ``{headHash, keyId, seq, timestamp}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.core.audit import format_timestamp, parse_timestamp
from bastion.core.jcs import canonical_json

CHECKPOINT_DOMAIN = b"bastion-audit-checkpoint/1\n"


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """A signed statement that event ``seq`` has hash ``head_hash``, made at ``timestamp``.

    ``signature`` is base64url (no padding) Ed25519 over `checkpoint_payload`; ``key_id``
    names the public key that verifies it.
    """

    seq: int
    head_hash: str
    timestamp: datetime
    key_id: str
    signature: str


def checkpoint_payload(seq: int, head_hash: str, timestamp: datetime, key_id: str) -> bytes:
    """The exact bytes a checkpoint signs: a domain label and canonical JSON."""
    body = {
        "headHash": head_hash,
        "keyId": key_id,
        "seq": seq,
        "timestamp": format_timestamp(timestamp),
    }
    return CHECKPOINT_DOMAIN + canonical_json(body)


def checkpoint_to_json(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "seq": checkpoint.seq,
        "headHash": checkpoint.head_hash,
        "timestamp": format_timestamp(checkpoint.timestamp),
        "keyId": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def checkpoint_from_json(data: Mapping[str, Any]) -> AuditCheckpoint:
    """ValueError unless ``data`` has `checkpoint_to_json`'s shape."""
    try:
        checkpoint = AuditCheckpoint(
            seq=data["seq"],
            head_hash=data["headHash"],
            timestamp=parse_timestamp(data["timestamp"]),
            key_id=data["keyId"],
            signature=data["signature"],
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an audit checkpoint: missing or invalid {exc}") from None
    texts = (checkpoint.head_hash, checkpoint.key_id, checkpoint.signature)
    if type(checkpoint.seq) is not int or not all(isinstance(v, str) for v in texts):
        raise ValueError("not an audit checkpoint: wrong field types")
    return checkpoint
