"""Identity: groups and memberships, tenant state, passwords, login throttles, refresh and
registration tokens, signing keys, revoked tokens and the revocation epoch.

Revision ID: 0003_identity
Revises: 0001
Create Date: 2025-02-01

A branch from 0001 (migrations upgrade to every head). Hand-written and self-contained;
tests/backends check that it produces exactly `bastion.backends.sql.identity_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_identity"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _owned_by_principal(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "principal_id"], ["principals.tenant_id", "principals.id"], name=name
    )


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_groups_tenant_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_groups_tenant_id_name"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_groups_tenant_id_id"),
    )
    op.create_table(
        "group_members",
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("principal_id", sa.String(), primary_key=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "group_id"],
            ["groups.tenant_id", "groups.id"],
            name="fk_group_members_group",
        ),
        _owned_by_principal("fk_group_members_principal"),
    )
    op.create_index("ix_group_members_principal", "group_members", ["tenant_id", "principal_id"])
    op.create_table(
        "tenant_states",
        sa.Column("tenant_id", sa.String(), primary_key=True),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_tenant_states_tenant_id"),
    )
    op.create_table(
        "password_credentials",
        sa.Column("tenant_id", sa.String(), primary_key=True),
        sa.Column("principal_id", sa.String(), primary_key=True),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("changed_at", _utc(), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
        _owned_by_principal("fk_password_credentials_principal"),
    )
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", _utc(), nullable=False),
        sa.Column("locked_until", _utc(), nullable=True),
        sa.Column("lockouts", sa.Integer(), nullable=False),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("principal_id", sa.String(), nullable=False),
        sa.Column("family_id", sa.String(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("used_at", _utc(), nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
        _owned_by_principal("fk_refresh_tokens_principal"),
    )
    op.create_index("ux_refresh_tokens_token_hash", "refresh_tokens", ["token_hash"], unique=True)
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_principal", "refresh_tokens", ["tenant_id", "principal_id"])
    op.create_table(
        "registration_tokens",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("used_at", _utc(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_registration_tokens_tenant_id"
        ),
    )
    op.create_index(
        "ux_registration_tokens_token_hash", "registration_tokens", ["token_hash"], unique=True
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(), primary_key=True),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("retired_at", _utc(), nullable=True),
        sa.Column("publish_until", _utc(), nullable=True),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(), primary_key=True),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=False),
    )
    epoch = op.create_table(
        "revocation_epoch",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(epoch, [{"id": 1, "value": 0}])


def downgrade() -> None:
    for table in (
        "revocation_epoch",
        "revoked_tokens",
        "signing_keys",
        "registration_tokens",
        "refresh_tokens",
        "login_throttles",
        "password_credentials",
        "tenant_states",
        "group_members",
        "groups",
    ):
        op.drop_table(table)
