"""The backend matrix of the storage contract suite: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.backends.protocols import Storage

from .factories import Backend


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """An empty, unmigrated backing store of each kind."""
    name: str = request.param
    if name == "memory":
        url = "memory://"
    elif name == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("clean_postgres_url")
    backend = Backend(name, url)
    yield backend
    backend.close()


@pytest.fixture
def storage(backend: Backend) -> Storage:
    """A migrated, empty storage of each kind."""
    storage = backend.open()
    storage.migrate()
    return storage
