"""When a refresh-token family's session ends, however often it rotates.

A login's session (``security.authentication.tokens.sessionLifetime``) ends at a fixed time;
each refresh token hands that time on to its successor and expires no later. Tokens stored
before this revision have none: their successors start counting at their first refresh.

Revision ID: 0012_session_end
Revises: 0011_rule_order
Create Date: 2026-12-07

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_session_end"
down_revision: str | Sequence[str] | None = "0011_rule_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    column = sa.Column("session_ends_at", sa.DateTime(timezone=True), nullable=True)
    op.add_column("refresh_tokens", column)


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("session_ends_at")
