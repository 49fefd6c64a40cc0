"""An index on refresh token expiry, so that long-expired tokens can be removed.

Every refresh stores a new token; issuing one now also removes a couple of tokens that expired
more than a refresh lifetime ago (`bastion.services.tokens`), soonest first, through this index.

Revision ID: 0006_refresh_expiry
Revises: 0005_throttle_forget
Create Date: 2026-12-03

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_refresh_expiry"
down_revision: str | Sequence[str] | None = "0005_throttle_forget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
