"""Shared fixtures: scratch SQLite files, a private PostgreSQL database, a Redis key prefix.

PostgreSQL and Redis are real servers on loopback. When one is unreachable its tests are
skipped with the reason, except under CI (``CI=true``), where they are mandatory and fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import redis
from psycopg import sql

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
# Databases are created and dropped from this one; tests never write to it.
POSTGRES_ADMIN_DSN = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres dbname=test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _unavailable(what: str, exc: Exception) -> NoReturn:
    """Skip, or fail under CI: a missing service must not turn mandatory tests into skips."""
    detail = " ".join(str(exc).split())
    reason = f"{what} unreachable: {exc.__class__.__name__}: {detail}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL and Redis tests are mandatory)")
    pytest.skip(reason)


def _unique_suffix() -> str:
    return f"{os.getpid()}_{secrets.token_hex(4)}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A ``sqlite:////abs/path`` URL for a database file in this test's scratch directory."""
    return f"sqlite:///{tmp_path / 'bastion.db'}"


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=5)


@contextmanager
def _temporary_database() -> Iterator[str]:
    """Create ``bastion_test_<pid>_<random>``, yield its URL, drop it at the end."""
    name = f"bastion_test_{_unique_suffix()}"
    try:
        with _admin_connection() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        _unavailable(f"PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT}", exc)
    try:
        yield f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with _admin_connection() as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            conn.execute(drop)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped at the end.

    Yields ``postgresql+psycopg://postgres@127.0.0.1:5432/bastion_test_<pid>_<random>``.
    Tests that need an empty schema each use `clean_postgres_url`.
    """
    with _temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def fresh_postgres_url() -> Iterator[str]:
    """A database of this test module's own (for processes that share it, like e2e stacks)."""
    with _temporary_database() as url:
        yield url


@pytest.fixture
def clean_postgres_url(postgres_url: str) -> str:
    """`postgres_url` with its public schema emptied first: no tables, no migration history."""
    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Fail rather than hang if a leaked connection still holds a lock on a table.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_url


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    """A key prefix unique to this test session: ``bastion-test-<pid>-<random>:``."""
    return f"bastion-test-{_unique_suffix().replace('_', '-')}:"


@pytest.fixture(scope="session")
def redis_url(redis_prefix: str) -> Iterator[str]:
    """The Redis URL, once it answers PING; every key under `redis_prefix` is deleted at the end.

    Tests must write only keys that start with `redis_prefix`.
    """
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _unavailable("Redis at 127.0.0.1:6379", exc)
    try:
        yield REDIS_URL
    finally:
        keys = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()
