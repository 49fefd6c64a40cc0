"""An index on the expiry of revoked access tokens, so that spent revocations can be removed.

Every revocation (a logout, a revoked token, a refresh family revoked) stores a row until the
tokens it names have expired; each new one now also removes a couple whose tokens expired more
than an hour ago (`bastion.services.tokens`), soonest first, through this index.

Revision ID: 0007_revoked_expiry
Revises: 0006_refresh_expiry
Create Date: 2026-12-03

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_revoked_expiry"
down_revision: str | Sequence[str] | None = "0006_refresh_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
