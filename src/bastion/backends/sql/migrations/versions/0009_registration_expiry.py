"""An index on the expiry of agent registration tokens, so that spent ones can be removed.

Every new registration token now also removes a couple that expired more than a week ago,
used or not (`bastion.services.agents`), soonest first, through this index: the tokens of a
fleet that registers agents every day no longer pile up without end.

Revision ID: 0009_registration_expiry
Revises: 0008_name_order
Create Date: 2026-12-07

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_registration_expiry"
down_revision: str | Sequence[str] | None = "0008_name_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_registration_tokens_expires_at", "registration_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_registration_tokens_expires_at", table_name="registration_tokens")
