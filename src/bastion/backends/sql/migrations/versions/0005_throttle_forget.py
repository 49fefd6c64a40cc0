"""Login throttle counters say when they may be forgotten.

``login_throttles.forget_at`` is the moment a counter starts to act as a new one (its window
and lock over, its escalation memory past); logins remove counters past it, through the index.
Counters stored before this revision have none and are kept until a login counts under them
again.

Revision ID: 0005_throttle_forget
Revises: 0003_identity
Create Date: 2026-12-03

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_throttle_forget"
down_revision: str | Sequence[str] | None = "0003_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_throttles") as table:
        table.add_column(sa.Column("forget_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_login_throttles_forget_at", "login_throttles", ["forget_at"])


def downgrade() -> None:
    op.drop_index("ix_login_throttles_forget_at", table_name="login_throttles")
    with op.batch_alter_table("login_throttles") as table:
        table.drop_column("forget_at")
