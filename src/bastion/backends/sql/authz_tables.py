"""The authorization tables (custom roles, resource rules, model version) on the shared metadata.

Migration ``0004_authz`` must produce exactly these; tests/backends check it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bastion.backends.sql.tables import UtcDateTime, code_point_index, metadata

authz_roles = Table(
    "authz_roles",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_authz_roles_tenant_id"),
        nullable=False,
    ),
    Column("name", String, nullable=False),
    Column("permissions", Text, nullable=False),
    Column("inherits", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_authz_roles_tenant_id_name"),
)

authz_resource_rules = Table(
    "authz_resource_rules",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_authz_resource_rules_tenant_id"),
        nullable=False,
    ),
    Column("resource_type", String, nullable=False),
    Column("resource_id", String, nullable=False),
    Column("allowed_users", Text, nullable=False),
    Column("allowed_roles", Text, nullable=False),
    Column("actions", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "tenant_id", "resource_type", "resource_id", name="uq_authz_resource_rules_instance"
    ),
)

code_point_index(
    "ix_authz_resource_rules_order_c",
    authz_resource_rules,
    ("tenant_id",),
    "resource_type",
    "resource_id",
)

# One row (id 1): the version every compiled-model cache compares against.
authz_state = Table(
    "authz_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
