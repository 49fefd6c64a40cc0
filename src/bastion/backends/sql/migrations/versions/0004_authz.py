"""Authorization: custom roles, resource rules and the compiled-model version.

Revision ID: 0004_authz
Revises: 0001
Create Date: 2025-02-01

A branch from 0001 (migrations upgrade to every head). Hand-written and self-contained;
tests/backends check that it produces exactly `bastion.backends.sql.authz_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_authz"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "authz_roles",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("inherits", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_authz_roles_tenant_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_authz_roles_tenant_id_name"),
    )
    op.create_table(
        "authz_resource_rules",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("allowed_users", sa.Text(), nullable=False),
        sa.Column("allowed_roles", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_authz_resource_rules_tenant_id"
        ),
        sa.UniqueConstraint(
            "tenant_id", "resource_type", "resource_id", name="uq_authz_resource_rules_instance"
        ),
    )
    state = op.create_table(
        "authz_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    for table in ("authz_state", "authz_resource_rules", "authz_roles"):
        op.drop_table(table)
