"""Indexes for paged lists: names in code-point order on PostgreSQL, API keys by prefix.

The admin API lists users, service accounts, agents, groups and API keys in pages by name, in
code-point order (``COLLATE "C"``). PostgreSQL's unique indexes on those names sort by the
database's collation, so each page sorted the whole tenant (28 ms a page at 100,000 users,
against 1.3 ms with these). An API key named by its display prefix is found through an index
instead of reading every key of the tenant.

Revision ID: 0008_name_order
Revises: 0007_revoked_expiry
Create Date: 2026-12-07

Hand-written and self-contained; tests/backends check that the migrations produce exactly
`bastion.backends.sql.tables` and `bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_name_order"
down_revision: str | Sequence[str] | None = "0007_revoked_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CODE_POINT = (
    ("ix_principals_name_c", "principals", ("tenant_id", "kind")),
    ("ix_api_keys_name_c", "api_keys", ("tenant_id",)),
    ("ix_groups_name_c", "groups", ("tenant_id",)),
)


def upgrade() -> None:
    op.create_index("ix_api_keys_tenant_id_prefix", "api_keys", ["tenant_id", "prefix"])
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, leading in _CODE_POINT:
        columns = [*(sa.column(c) for c in leading), sa.column("name").collate("C")]
        op.create_index(name, table, columns)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table, _ in _CODE_POINT:
            op.drop_index(name, table_name=table)
    op.drop_index("ix_api_keys_tenant_id_prefix", table_name="api_keys")
