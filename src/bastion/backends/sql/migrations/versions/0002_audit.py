"""Audit checkpoints, and audit event indexes ordered by seq.

``audit_checkpoints`` holds signed (seq, head hash) statements that pin the chain. The
``(column, timestamp)`` indexes of 0001 become ``(column, seq)``: a filtered query then reads
its matches in seq order without sorting them, and they are cheaper to maintain on insert.

Revision ID: 0002_audit
Revises: 0001
Create Date: 2025-02-01

A branch from 0001 (migrations upgrade to every head). Hand-written and self-contained;
tests/backends check that it produces exactly `bastion.backends.sql.audit_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_audit"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_FILTERS = ("actor_id", "action", "tenant", "resource_key", "outcome")


def upgrade() -> None:
    for column in _FILTERS:
        op.drop_index(f"ix_audit_events_{column}_timestamp", table_name="audit_events")
        op.create_index(f"ix_audit_events_{column}_seq", "audit_events", [column, "seq"])
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("head_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("signature", sa.String(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    for column in _FILTERS:
        op.drop_index(f"ix_audit_events_{column}_seq", table_name="audit_events")
        op.create_index(
            f"ix_audit_events_{column}_timestamp", "audit_events", [column, "timestamp"]
        )
