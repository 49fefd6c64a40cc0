"""The identity tables (groups, credentials, tokens, signing keys) on the shared metadata.

Migration ``0003_identity`` must produce exactly these; tests/backends check it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bastion.backends.sql.tables import UtcDateTime, code_point_index, metadata

groups = Table(
    "groups",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id", String, ForeignKey("tenants.id", name="fk_groups_tenant_id"), nullable=False
    ),
    Column("name", String, nullable=False),
    Column("display_name", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_groups_tenant_id_name"),
    UniqueConstraint("tenant_id", "id", name="uq_groups_tenant_id_id"),
)
code_point_index("ix_groups_name_c", groups, ("tenant_id",), "name")

group_members = Table(
    "group_members",
    metadata,
    Column("tenant_id", String, nullable=False),
    Column("group_id", String, primary_key=True),
    Column("principal_id", String, primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(
        ["tenant_id", "group_id"], ["groups.tenant_id", "groups.id"], name="fk_group_members_group"
    ),
    ForeignKeyConstraint(
        ["tenant_id", "principal_id"],
        ["principals.tenant_id", "principals.id"],
        name="fk_group_members_principal",
    ),
    Index("ix_group_members_principal", "tenant_id", "principal_id"),
)

tenant_states = Table(
    "tenant_states",
    metadata,
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_tenant_states_tenant_id"),
        primary_key=True,
    ),
    Column("display_name", String, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

password_credentials = Table(
    "password_credentials",
    metadata,
    Column("tenant_id", String, primary_key=True),
    Column("principal_id", String, primary_key=True),
    Column("hash", String, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("history", Text, nullable=False),
    ForeignKeyConstraint(
        ["tenant_id", "principal_id"],
        ["principals.tenant_id", "principals.id"],
        name="fk_password_credentials_principal",
    ),
)

login_throttles = Table(
    "login_throttles",
    metadata,
    Column("key", String, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("lockouts", Integer, nullable=False),
    # When the counter acts as a new one and may go (migration 0005_throttle_forget).
    Column("forget_at", UtcDateTime, nullable=True),
    Index("ix_login_throttles_forget_at", "forget_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column("tenant_id", String, nullable=False),
    Column("principal_id", String, nullable=False),
    Column("family_id", String, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("scopes", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    # When the family's session ends, however often it rotates (migration 0012_session_end).
    Column("session_ends_at", UtcDateTime, nullable=True),
    ForeignKeyConstraint(
        ["tenant_id", "principal_id"],
        ["principals.tenant_id", "principals.id"],
        name="fk_refresh_tokens_principal",
    ),
    Index("ux_refresh_tokens_token_hash", "token_hash", unique=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_principal", "tenant_id", "principal_id"),
    # Expired tokens are removed soonest first (migration 0006_refresh_expiry).
    Index("ix_refresh_tokens_expires_at", "expires_at"),
)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_registration_tokens_tenant_id"),
        nullable=False,
    ),
    Column("token_hash", LargeBinary, nullable=False),
    Column("prefix", String, nullable=False),
    Column("capabilities", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("agent_id", String, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ux_registration_tokens_token_hash", "token_hash", unique=True),
    Index("ix_registration_tokens_expires_at", "expires_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String, primary_key=True),
    Column("algorithm", String, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("sealed_private", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("retired_at", UtcDateTime, nullable=True),
    Column("publish_until", UtcDateTime, nullable=True),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String, primary_key=True),
    Column("tenant_id", String, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=False),
    # Entries are removed soonest first once no token they name can verify (migration 0007).
    Index("ix_revoked_tokens_expires_at", "expires_at"),
)

revocation_epoch = Table(
    "revocation_epoch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)
