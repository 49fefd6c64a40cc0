"""An index for the paged list of resource rules: by resource type and id in code-point order.

The admin API lists a tenant's stored resource rules in pages ordered by resource type and
id in code-point order (``COLLATE "C"``); on PostgreSQL the unique index on those sorts by
the database's collation, so each page would sort the whole tenant (as 0008_name_order says
of names). SQLite's own order already is code-point order: nothing to add there.

Revision ID: 0011_rule_order
Revises: 0010_binding_order
Create Date: 2026-12-07

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_rule_order"
down_revision: str | Sequence[str] | None = "0010_binding_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0004_authz"  # the table is that branch's

_NAME = "ix_authz_resource_rules_order_c"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    texts = [sa.column(c).collate("C") for c in ("resource_type", "resource_id")]
    op.create_index(_NAME, "authz_resource_rules", [sa.column("tenant_id"), *texts])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(_NAME, table_name="authz_resource_rules")
