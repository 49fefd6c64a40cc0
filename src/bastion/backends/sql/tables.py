"""The SQL schema as SQLAlchemy Core tables; migrations/versions must produce exactly this."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL keeps the offset (``timestamptz``); SQLite keeps none, so values are stored as
    naive UTC and given ``tzinfo=UTC`` back on the way out. A naive value is refused on the way
    in: it is ambiguous, and a security timestamp must not be guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: bastion stores timezone-aware UTC only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("name", name="uq_tenants_name"),
)

principals = Table(
    "principals",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_principals_tenant_id"),
        nullable=False,
    ),
    Column("kind", String, nullable=False),
    Column("name", String, nullable=False),
    Column("display_name", String, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_principals_tenant_id_name"),
    # The target of api_keys' composite key: a key can only belong to a principal of its tenant.
    UniqueConstraint("tenant_id", "id", name="uq_principals_tenant_id_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_api_keys_tenant_id"),
        nullable=False,
    ),
    Column("principal_id", String, nullable=False),
    Column("name", String, nullable=False),
    Column("prefix", String, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    ForeignKeyConstraint(
        ["tenant_id", "principal_id"],
        ["principals.tenant_id", "principals.id"],
        name="fk_api_keys_principal",
    ),
    UniqueConstraint("tenant_id", "name", name="uq_api_keys_tenant_id_name"),
    Index("ux_api_keys_key_hash", "key_hash", unique=True),
    Index("ix_api_keys_tenant_id_prefix", "tenant_id", "prefix"),
)


# Indexes that alembic cannot compare (it reflects no collation); tests/backends check them.
CODE_POINT_INDEXES: list[Index] = []


def code_point_index(name: str, table: Table, leading: tuple[str, ...], *texts: str) -> None:
    """An index on the ``leading`` columns, then the ``texts`` in the code-point order lists
    are paged in (`bastion.backends.sql.stores.text_order`). PostgreSQL only: there a unique
    name's index sorts by the database's collation, and a page would sort the whole tenant;
    SQLite's BINARY order already is code-point order."""
    columns = [table.c[c] for c in leading] + [table.c[c].collate("C") for c in texts]
    CODE_POINT_INDEXES.append(Index(name, *columns).ddl_if(dialect="postgresql"))


code_point_index("ix_principals_name_c", principals, ("tenant_id", "kind"), "name")
code_point_index("ix_api_keys_name_c", api_keys, ("tenant_id",), "name")

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("id", String, primary_key=True),
    Column(
        "tenant_id",
        String,
        ForeignKey("tenants.id", name="fk_role_bindings_tenant_id"),
        nullable=False,
    ),
    Column("subject_type", String, nullable=False),
    Column("subject_name", String, nullable=False),
    Column("role", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    UniqueConstraint(
        "tenant_id", "subject_type", "subject_name", "role", name="uq_role_bindings_subject_role"
    ),
    Index("ix_role_bindings_subject", "tenant_id", "subject_type", "subject_name"),
)
code_point_index(
    "ix_role_bindings_order_c",
    role_bindings,
    ("tenant_id",),
    "subject_type",
    "subject_name",
    "role",
)

audit_events = Table(
    "audit_events",
    metadata,
    # Assigned by the hash chain under lock_head, never by the database.
    # BIGINT on PostgreSQL; on SQLite plain INTEGER so the column is the 64-bit rowid itself.
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=False),
    Column("event_id", String, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("tenant", String, nullable=False),
    Column("action", String, nullable=False),
    Column("outcome", String, nullable=False),
    Column("actor_id", String, nullable=False),
    Column("resource_key", String, nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", String, nullable=False),
    Column("hash", String, nullable=False),
    UniqueConstraint("event_id", name="uq_audit_events_event_id"),
    Index("ix_audit_events_timestamp", "timestamp"),
    # Each filter column with seq (migration 0002_audit): a filtered query reads its matches
    # already in seq order, and time bounds become a seq range (timestamps never decrease).
    Index("ix_audit_events_actor_id_seq", "actor_id", "seq"),
    Index("ix_audit_events_action_seq", "action", "seq"),
    Index("ix_audit_events_tenant_seq", "tenant", "seq"),
    Index("ix_audit_events_resource_key_seq", "resource_key", "seq"),
    Index("ix_audit_events_outcome_seq", "outcome", "seq"),
)
