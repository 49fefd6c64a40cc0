"""What only the SQL backend has: migrations, SQLite pragmas, locking and error hygiene."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from bastion.backends import open_storage
from bastion.backends.memory import MemoryStorage
from bastion.backends.sql import SQLStorage
from bastion.backends.sql.engine import build_engine
from bastion.backends.sql.identity_tables import login_throttles, revoked_tokens
from bastion.backends.sql.migrate import upgrade
from bastion.backends.sql.tables import CODE_POINT_INDEXES, metadata
from bastion.core.credentials import RevokedToken
from bastion.errors import ConflictError, StorageError

from .factories import T0, make_event, make_tenant, seed_tenant


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each SQL kind."""
    fixture = "sqlite_url" if request.param == "sqlite" else "clean_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def sql_storage(sql_url: str) -> Iterator[SQLStorage]:
    storage = SQLStorage(sql_url)
    storage.migrate()
    yield storage
    storage.close()


# Alembic cannot reflect an expression's collation; the code-point indexes are read below.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migration_builds_exactly_the_declared_schema(sql_storage: SQLStorage) -> None:
    code_point = {index.name for index in CODE_POINT_INDEXES}

    def comparable(item: object, name: str | None, kind: str, *_: object) -> bool:
        return not (kind == "index" and name in code_point)

    with sql_storage._engine.connect() as conn:
        opts = {"compare_type": True, "include_object": comparable}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, metadata) == []
        if conn.dialect.name != "postgresql":
            return  # SQLite's own order is code-point order: no such index there
        query = text("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")
        built = {row.indexdef for row in conn.execute(query)}
    assert {
        f"CREATE INDEX {index.name} ON public.{index.table} USING btree "
        f"({', '.join(str(c).split('.', 1)[1] for c in index.expressions)})"
        for index in CODE_POINT_INDEXES
    } <= built
    assert len(code_point) == 5


def test_upgrading_keeps_rows_stored_before_the_forgetting_migrations(sql_url: str) -> None:
    """A database at the revisions before 0005-0007 (throttle counters without a forget
    time, no expiry indexes) upgrades with its rows kept; a counter stored then is kept
    until a login counts under it, and only then can go."""
    storage = SQLStorage(sql_url)
    try:
        for revision in ("0002_audit", "0003_identity", "0004_authz"):
            upgrade(storage._engine, revision)
        with storage._engine.begin() as conn:  # only the columns of that revision
            row = {"key": "acct:old", "failures": 3, "window_start": T0, "lockouts": 0}
            conn.execute(login_throttles.insert().values(row))
            revoked = RevokedToken("jti-old", "ten-1", T0 + timedelta(days=60), T0)
            conn.execute(revoked_tokens.insert().values(asdict(revoked)))
        storage.migrate()
        now = T0 + timedelta(days=30)
        with storage.transaction() as tx:
            assert tx.throttles.forget(now=now, limit=10) == 0  # no forget time: kept
            old = tx.throttles.lock("acct:old", at=now)
            assert (old.failures, old.window_start, old.forget_at) == (3, T0, None)
            tx.throttles.put(replace(old, forget_at=now))  # a login counted under it
        with storage.transaction() as tx:
            assert tx.throttles.forget(now=now, limit=10) == 1
            assert tx.revocations.is_token_revoked("jti-old")
    finally:
        storage.close()


def test_migrate_does_not_depend_on_the_current_directory(
    sql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = SQLStorage(sql_url)
    try:
        storage.migrate()
        storage.check()
    finally:
        storage.close()


def test_concurrent_migrations_both_succeed(sql_url: str) -> None:
    storages = [SQLStorage(sql_url), SQLStorage(sql_url)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def migrate(storage: SQLStorage) -> None:
        try:
            start.wait()
            storage.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        seed_tenant(storages[1], "acme")
    finally:
        for storage in storages:
            storage.close()


def test_sqlite_connection_pragmas(sqlite_url: str) -> None:
    storage = SQLStorage(sqlite_url)
    try:
        with storage._engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        storage.close()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 15000,
    }


def test_sqlite_check_does_not_queue_behind_a_writer(sqlite_url: str) -> None:
    writer, prober = SQLStorage(sqlite_url), SQLStorage(sqlite_url)
    try:
        writer.migrate()
        with writer.transaction() as uow:
            uow.tenants.create(make_tenant("acme"))
            started = time.monotonic()
            prober.check()
            assert time.monotonic() - started < 1.0
    finally:
        writer.close()
        prober.close()


def test_read_only_unit_refuses_writes_and_leaves_pooled_connections_writable(
    sql_storage: SQLStorage,
) -> None:
    with pytest.raises(StorageError), sql_storage.read_only() as uow:
        uow.tenants.create(make_tenant("acme"))
    for name in ("globex", "initech"):  # whichever pooled connection comes next can write
        seed_tenant(sql_storage, name)
    with sql_storage.read_only() as uow:
        assert [t.name for t in uow.tenants.list()] == ["globex", "initech"]


def test_sqlite_read_only_unit_reads_beside_a_writer(sqlite_url: str) -> None:
    """While another process holds the write lock, a read-only unit reads the last committed
    state (were it to ask for the lock, it would wait out the busy timeout and fail)."""
    writer, reader = SQLStorage(sqlite_url), SQLStorage(sqlite_url)
    try:
        writer.migrate()
        seed_tenant(writer, "acme")
        with writer.transaction() as uow:
            uow.tenants.create(make_tenant("globex"))
            with reader.read_only() as seen:
                assert [t.name for t in seen.tenants.list()] == ["acme"]
    finally:
        writer.close()
        reader.close()


def test_sqlite_begin_refused_by_a_held_write_lock_is_storage_error(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE runs on the driver connection; its error (here "database is locked",
    once the busy timeout is over) still comes out as a StorageError naming the step."""
    storage = SQLStorage(sqlite_url)
    storage.migrate()
    with storage._engine.connect() as conn:  # the pooled connection the next unit reuses
        conn.connection.driver_connection.execute("PRAGMA busy_timeout = 50")  # type: ignore[union-attr]
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        refused = r"begin a transaction failed \(OperationalError\)"
        with pytest.raises(StorageError, match=refused) as caught, storage.transaction():
            pass
        assert caught.value.__cause__ is None
        holder.execute("ROLLBACK")
        seed_tenant(storage, "acme")  # the lock released, the same connection writes again
    finally:
        holder.close()
        storage.close()


def _connection(uow: object) -> object:
    """The SQLAlchemy connection a unit of work runs on (a pooled one is new every time)."""
    return uow._audit._conn  # type: ignore[attr-defined]


def test_one_thread_sqlite_storage_keeps_its_writer_connection(sqlite_url: str) -> None:
    """The audit writer process's storage: writing units of work on its thread reuse one
    connection (no pool checkout a batch), still under BEGIN IMMEDIATE; a unit that fails
    gives it back, and another thread's units run on pooled connections beside it."""
    storage = open_storage(sqlite_url, one_thread=True)
    storage.migrate()
    path = sqlite_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with storage.transaction() as first:
            first.audit.insert([make_event(1)])
            kept = _connection(first)
        with storage.read_only() as seen:  # a pooled connection, never the kept one
            assert _connection(seen) is not kept
        with storage.transaction() as again:
            assert _connection(again) is kept
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # the kept connection holds the write lock
            again.audit.insert([make_event(2)])
        with pytest.raises(ValueError), storage.transaction() as failing:
            assert _connection(failing) is kept
            failing.audit.insert([make_event(3)])
            raise ValueError("the batch fails")
        with storage.transaction() as after:
            fresh = _connection(after)
            assert fresh is not kept
        elsewhere: list[object] = []

        def write_from_another_thread() -> None:
            with storage.transaction() as uow:
                elsewhere.append(_connection(uow))
                uow.audit.insert([make_event(3)])

        thread = threading.Thread(target=write_from_another_thread)
        thread.start()
        thread.join()
        assert elsewhere and elsewhere[0] is not fresh
        with storage.read_only() as uow:
            assert [event.seq for event in uow.audit.iterate()] == [1, 2, 3]
    finally:
        other.close()
        storage.close()


def test_one_thread_storage_drops_a_kept_connection_used_outside_a_unit(sqlite_url: str) -> None:
    """An iterator read after its unit of work ended (a bug in the caller) begins a
    transaction on the kept connection; the next unit of work starts on a new one instead of
    failing, and the stray transaction (and its write lock) ends."""
    storage = open_storage(sqlite_url, one_thread=True)
    storage.migrate()
    try:
        with storage.transaction() as uow:
            uow.audit.insert([make_event(1)])
            kept, leaked = _connection(uow), uow.audit.iterate()
        assert next(leaked).seq == 1
        with storage.transaction() as uow:
            assert _connection(uow) is not kept
            uow.audit.insert([make_event(2)])
    finally:
        storage.close()


@pytest.mark.postgres
def test_one_thread_postgres_storage_still_replaces_a_broken_connection(
    clean_postgres_url: str,
) -> None:
    """On PostgreSQL ``one_thread`` keeps pooling: the checkout's ping replaces a connection
    that a server restart (here: its backend terminated) broke, so no batch fails for it."""
    storage = open_storage(clean_postgres_url, one_thread=True)
    storage.migrate()
    try:
        with storage.transaction() as uow:
            uow.audit.insert([make_event(1)])
            backend = uow.audit._conn.execute(text("SELECT pg_backend_pid()")).scalar()  # type: ignore[attr-defined]
        dsn = clean_postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with storage.transaction() as uow:
            uow.audit.insert([make_event(2)])
    finally:
        storage.close()


def test_errors_carry_no_bound_values(sql_storage: SQLStorage) -> None:
    secret = "tenant-name-that-must-not-leak"
    seed_tenant(sql_storage, secret)
    with pytest.raises(ConflictError) as caught, sql_storage.transaction() as uow:
        uow.tenants.create(make_tenant(secret))
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_no_sqlalchemy_error_escapes(sql_storage: SQLStorage) -> None:
    with sql_storage.transaction() as uow:
        uow.audit.insert([make_event(1)])
        leaked = uow.audit.iterate()
    # The unit of work is over, so its connection is gone.
    with pytest.raises(StorageError):
        next(leaked)
    with sql_storage._engine.begin() as conn:
        conn.execute(text("DROP TABLE role_bindings"))
    failed = pytest.raises(StorageError, match="list role bindings failed")
    with failed, sql_storage.transaction() as uow:
        uow.bindings.list("ten-acme")


def test_sqlite_head_with_a_mangled_timestamp_is_storage_error(sqlite_url: str) -> None:
    storage = SQLStorage(sqlite_url)
    storage.migrate()
    with storage.transaction() as uow:
        uow.audit.insert([make_event(1)])
    with storage._engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET timestamp = 'not a date'"))
    failed = pytest.raises(StorageError, match="read the audit chain head failed")
    with failed, storage.transaction() as uow:
        uow.audit.head()
    storage.close()


def test_unreachable_postgres_is_storage_error_without_password() -> None:
    storage = SQLStorage("postgresql+psycopg://bastion:hunter2@127.0.0.1:1/bastion")
    try:
        with pytest.raises(StorageError) as caught:
            storage.check()
        assert "hunter2" not in str(caught.value)
        with pytest.raises(StorageError), storage.transaction():
            pass
    finally:
        storage.close()


def test_missing_sqlite_directory_is_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/bastion.db")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/bastion", "unsupported storage URL scheme 'mysql'"),
        ("postgresql://root:hunter2@db/bastion", "postgresql\\+psycopg://"),
        ("sqlite://", "unsupported"),
        ("sqlite:///:memory:", "memory://"),
        ("postgresql+psycopg2://root:hunter2@db/bastion", "unsupported"),
        ("bastion.db", "unsupported"),
    ],
)
def test_unusable_urls_are_refused_without_echo(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as caught:
        open_storage(url)
    assert "hunter2" not in str(caught.value)


def test_open_storage_picks_the_backend(sqlite_url: str) -> None:
    assert isinstance(open_storage("memory://"), MemoryStorage)
    storage = open_storage(sqlite_url)
    assert isinstance(storage, SQLStorage)
    storage.close()


def test_importing_backends_does_not_load_sqlalchemy() -> None:
    probe = (
        "import sys, bastion.backends, bastion.backends.memory;"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')]"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_new_sqlite_database_and_its_wal_are_private_to_the_owner(tmp_path: Path) -> None:
    """The file holds password hashes and the audit trail: 0600 whatever the umask."""
    path = tmp_path / "bastion.db"
    previous = os.umask(0o022)
    try:
        engine = build_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        engine.dispose()
    finally:
        os.umask(previous)
    assert modes["bastion.db"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes
