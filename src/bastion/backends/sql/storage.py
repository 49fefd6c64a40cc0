"""SQLStorage: the `Storage` protocol over SQLAlchemy, for SQLite and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from bastion.backends.protocols import (
    ApiKeyStore,
    AuditStore,
    AuthzVersionStore,
    BindingStore,
    ChangeCounters,
    GroupStore,
    PasswordStore,
    PrincipalStore,
    RefreshTokenStore,
    RegistrationTokenStore,
    ResourceRuleStore,
    RevocationStore,
    RoleStore,
    SigningKeyStore,
    TenantStateStore,
    TenantStore,
    ThrottleStore,
)
from bastion.backends.sql.audit import SQLAuditStore
from bastion.backends.sql.authz_stores import (
    SQLAuthzBindingStore,
    SQLAuthzVersionStore,
    SQLResourceRuleStore,
    SQLRoleStore,
)
from bastion.backends.sql.engine import BEGIN_IMMEDIATE, build_engine
from bastion.backends.sql.errors import translated
from bastion.backends.sql.identity_credentials import SQLPasswordStore, SQLThrottleStore
from bastion.backends.sql.identity_groups import SQLGroupStore, SQLTenantStateStore
from bastion.backends.sql.identity_tokens import (
    SQLRefreshTokenStore,
    SQLRegistrationTokenStore,
    SQLRevocationStore,
    SQLSigningKeyStore,
)
from bastion.backends.sql.stores import (
    SQLApiKeyStore,
    SQLPrincipalStore,
    SQLTenantStore,
)
from bastion.errors import SpoiledUnitError


class SQLUnitOfWork:
    """The stores of one database transaction; valid only inside `SQLStorage.transaction`."""

    def __init__(self, conn: Connection) -> None:
        # Its own reference: a caller may wrap ``audit`` (`RecordingStorage` does).
        self._audit = SQLAuditStore(conn)
        self.tenants: TenantStore = SQLTenantStore(conn)
        self.principals: PrincipalStore = SQLPrincipalStore(conn)
        self.api_keys: ApiKeyStore = SQLApiKeyStore(conn)
        self.bindings: BindingStore = SQLAuthzBindingStore(conn)
        self.audit: AuditStore = self._audit
        self.groups: GroupStore = SQLGroupStore(conn)
        self.tenant_states: TenantStateStore = SQLTenantStateStore(conn)
        self.passwords: PasswordStore = SQLPasswordStore(conn)
        self.throttles: ThrottleStore = SQLThrottleStore(conn)
        self.refresh_tokens: RefreshTokenStore = SQLRefreshTokenStore(conn)
        self.registration_tokens: RegistrationTokenStore = SQLRegistrationTokenStore(conn)
        self.signing_keys: SigningKeyStore = SQLSigningKeyStore(conn)
        self.revocations: RevocationStore = SQLRevocationStore(conn)
        self.roles: RoleStore = SQLRoleStore(conn)
        self.resource_rules: ResourceRuleStore = SQLResourceRuleStore(conn)
        self.authz_versions: AuthzVersionStore = SQLAuthzVersionStore(conn)

    @property
    def spoiled(self) -> str | None:
        """What failed part-way in this unit of work (it must not commit); None if nothing."""
        return self._audit.spoiled


class SQLStorage:
    """Storage in a SQL database named by ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``).

    Safe to share between threads: every unit of work takes its own pooled connection (with
    ``one_thread``, SQLite's writing units of work on the first writer's thread reuse one).
    """

    def __init__(self, url: str, *, one_thread: bool = False) -> None:
        self._engine = build_engine(url)
        self._sqlite_path = (
            self._engine.url.database if self._engine.dialect.name == "sqlite" else None
        )
        # ``one_thread`` (the audit writer process): on SQLite, writing units of work reuse
        # one connection instead of a pool checkout and return each (a sixth of a one-event
        # audit batch's CPU). A SQLite connection is an open file that nothing can drop; on
        # PostgreSQL the pool's ping at checkout still replaces a connection a restart broke.
        self._keep_writer = one_thread and self._sqlite_path is not None
        self._kept: Connection | None = None
        self._kept_thread: int | None = None
        self._readers = threading.local()
        self._reader_list: list[sqlite3.Connection] = []

    @contextmanager
    def transaction(self) -> Iterator[SQLUnitOfWork]:
        """A unit of work that commits on normal exit and rolls back on any exception.

        On SQLite it begins with BEGIN IMMEDIATE, so writers (in any process) run one at a time.
        """
        with self._writer_connection() as conn:
            with translated("begin a transaction"):
                transaction = conn.begin()
            unit = SQLUnitOfWork(conn)
            try:
                yield unit
            except BaseException:
                # The caller's exception matters more; closing the connection discards the rest.
                with suppress(SQLAlchemyError):
                    transaction.rollback()
                raise
            if unit.spoiled is not None:
                with suppress(SQLAlchemyError):
                    transaction.rollback()
                raise SpoiledUnitError(unit.spoiled)
            with translated("commit a transaction"):
                transaction.commit()

    @contextmanager
    def read_only(self) -> Iterator[SQLUnitOfWork]:
        """A unit of work that only reads, always rolled back.

        SQLite: a deferred BEGIN (in WAL mode a reader neither waits for nor blocks a writer)
        with ``query_only`` set for its duration. PostgreSQL: a READ ONLY transaction. Either
        refuses a write with `StorageError`.
        """
        with self._connection() as conn:
            sqlite = self._sqlite_path is not None
            if sqlite:
                conn = conn.execution_options(**{BEGIN_IMMEDIATE: False})
            with translated("begin a read-only transaction"):
                transaction = conn.begin()
                conn.exec_driver_sql(
                    "PRAGMA query_only = ON" if sqlite else "SET TRANSACTION READ ONLY"
                )
            try:
                yield SQLUnitOfWork(conn)
            finally:
                with suppress(SQLAlchemyError):
                    transaction.rollback()
                if sqlite:
                    try:
                        conn.exec_driver_sql("PRAGMA query_only = OFF")
                    except SQLAlchemyError:
                        # Never hand a query-only connection back to the pool for a writer.
                        conn.invalidate()

    @contextmanager
    def _writer_connection(self) -> Iterator[Connection]:
        """The connection a writing unit of work runs on: the kept one (``one_thread``, from
        the thread that first wrote, when no unit of work holds it already), else a pooled
        one. A unit of work that fails gives its connection back to the pool, kept or not."""
        if not self._keep_writer or self._kept_thread not in (None, threading.get_ident()):
            with self._connection() as pooled:
                yield pooled
            return
        conn, self._kept = self._kept, None
        if conn is not None and conn.in_transaction():  # used outside a unit of work since
            with suppress(SQLAlchemyError):
                conn.close()
            conn = None
        if conn is None:
            with translated("open a database connection"):
                conn = self._engine.connect()
        self._kept_thread = threading.get_ident()
        try:
            yield conn
        except BaseException:
            with suppress(SQLAlchemyError):
                conn.close()
            raise
        if conn.invalidated or self._kept is not None:
            with suppress(SQLAlchemyError):
                conn.close()
        else:
            self._kept = conn

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with translated("open a database connection"):
            conn = self._engine.connect()
        try:
            yield conn
        finally:
            with suppress(SQLAlchemyError):
                conn.close()

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision; safe to run concurrently."""
        # Imported here: alembic is only needed by `bastion migrate` and at start-up.
        from bastion.backends.sql.migrate import upgrade

        upgrade(self._engine)

    def check(self) -> None:
        """`StorageError` unless the database answers ``SELECT 1``."""
        with translated("check the database"), self._engine.connect() as conn:
            # A plain BEGIN on SQLite: a health check must not queue behind writers.
            conn.execution_options(**{BEGIN_IMMEDIATE: False})
            conn.execute(text("SELECT 1"))

    def change_counters(self) -> ChangeCounters | None:
        """Both counters in one autocommit SELECT on a per-thread SQLite connection (a few
        microseconds, never waiting for a writer in WAL mode); None on PostgreSQL (a round
        trip) and whenever the read fails, so the caller falls back to a unit of work."""
        if self._sqlite_path is None:
            return None
        try:
            row = self._reader().execute(_COUNTERS_SQL).fetchone()
        except sqlite3.Error:
            return None
        return ChangeCounters(int(row[0] or 0), int(row[1] or 0))

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if reader is None:
            assert self._sqlite_path is not None
            reader = sqlite3.connect(
                self._sqlite_path, isolation_level=None, check_same_thread=False
            )
            # A reader waits at most briefly (WAL recovery); then the caller takes the slow path.
            reader.execute("PRAGMA busy_timeout = 100")
            self._readers.conn = reader
            self._reader_list.append(reader)
        return reader

    def close(self) -> None:
        """Close every pooled connection; the storage must not be used afterwards."""
        for reader in self._reader_list:
            with suppress(sqlite3.Error):
                reader.close()
        self._reader_list.clear()
        kept, self._kept = self._kept, None
        if kept is not None:
            with suppress(SQLAlchemyError):
                kept.close()
        self._engine.dispose()


_COUNTERS_SQL = (
    "SELECT (SELECT value FROM revocation_epoch WHERE id = 1),"
    " (SELECT version FROM authz_state WHERE id = 1)"
)
