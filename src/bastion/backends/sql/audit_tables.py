"""The audit checkpoint table on the shared metadata; migration ``0002_audit`` produces it."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from bastion.backends.sql.tables import SEQ_TYPE, UtcDateTime, metadata

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    # The seq of the event whose hash the checkpoint signs (not a foreign key: retention
    # deletes that event and keeps its checkpoint as the anchor of what remains).
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=False),
    Column("head_hash", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("key_id", String, nullable=False),
    Column("signature", String, nullable=False),
)
