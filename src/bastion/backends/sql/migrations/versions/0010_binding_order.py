"""An index for the paged list of role bindings: by subject and role in code-point order.

The admin API lists a tenant's bindings in pages ordered by subject type, subject name and
role in code-point order (``COLLATE "C"``); on PostgreSQL the unique index on those sorts by
the database's collation, so each page would sort the whole tenant (as 0008_name_order says
of names). SQLite's own order already is code-point order: nothing to add there.

Revision ID: 0010_binding_order
Revises: 0009_registration_expiry
Create Date: 2026-12-07

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_binding_order"
down_revision: str | Sequence[str] | None = "0009_registration_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_role_bindings_order_c"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    texts = [sa.column(c).collate("C") for c in ("subject_type", "subject_name", "role")]
    op.create_index(_NAME, "role_bindings", [sa.column("tenant_id"), *texts])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(_NAME, table_name="role_bindings")
