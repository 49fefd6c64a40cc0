"""Initial schema: tenants, principals, api_keys, role_bindings, audit_events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written and self-contained (it does not import bastion's table definitions, which will
move on); tests/backends check that it produces exactly `bastion.backends.sql.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "principals",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_principals_tenant_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_principals_tenant_id_name"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_principals_tenant_id_id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("principal_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=True),
        sa.Column("last_used_at", _utc(), nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_api_keys_tenant_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "principal_id"],
            ["principals.tenant_id", "principals.id"],
            name="fk_api_keys_principal",
        ),
        sa.UniqueConstraint("tenant_id", "name", name="uq_api_keys_tenant_id_name"),
    )
    op.create_index("ux_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_table(
        "role_bindings",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("subject_type", sa.String(), nullable=False),
        sa.Column("subject_name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_role_bindings_tenant_id"),
        sa.UniqueConstraint(
            "tenant_id",
            "subject_type",
            "subject_name",
            "role",
            name="uq_role_bindings_subject_role",
        ),
    )
    op.create_index(
        "ix_role_bindings_subject",
        "role_bindings",
        ["tenant_id", "subject_type", "subject_name"],
    )
    op.create_table(
        "audit_events",
        # BIGINT on PostgreSQL; INTEGER on SQLite so that the column is the rowid.
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("timestamp", _utc(), nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("actor_id", sa.String(), nullable=False),
        sa.Column("resource_key", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_audit_events_event_id"),
    )
    for name, columns in (
        ("ix_audit_events_timestamp", ["timestamp"]),
        ("ix_audit_events_actor_id_timestamp", ["actor_id", "timestamp"]),
        ("ix_audit_events_action_timestamp", ["action", "timestamp"]),
        ("ix_audit_events_tenant_timestamp", ["tenant", "timestamp"]),
        ("ix_audit_events_resource_key_timestamp", ["resource_key", "timestamp"]),
        ("ix_audit_events_outcome_timestamp", ["outcome", "timestamp"]),
    ):
        op.create_index(name, "audit_events", columns)


def downgrade() -> None:
    for table in ("audit_events", "role_bindings", "api_keys", "principals", "tenants"):
        op.drop_table(table)
