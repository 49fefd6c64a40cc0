"""An identity world: every service wired from a config, on memory or a SQL file, with a
frozen clock the tests advance, and a cheap Argon2id for speed where the cost is not tested."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.backends.memory import MemoryStorage
from bastion.backends.protocols import Storage
from bastion.config import parse_config
from bastion.core.model import Principal, PrincipalKind, Tenant
from bastion.crypto.passwords import PasswordHasher
from bastion.services.bootstrap import Bootstrapped, initialise
from bastion.wiring import Services, build_services

ACTOR = {"type": "operator", "id": "tester", "via": "test"}
PASSWORD = "Correct-Horse-9-Battery"
PEPPER = "identity-test-pepper-" + "q" * 30


@dataclass
class FrozenClock:
    moment: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class World:
    services: Services
    clock: FrozenClock
    boot: Bootstrapped

    @property
    def identity(self) -> Any:
        return self.services.identity

    @property
    def tenant(self) -> Tenant:
        return self.boot.tenant

    def user(self, name: str, password: str | None = PASSWORD) -> Principal:
        with self.services.storage.transaction() as tx:
            user = self.identity.directory.create_principal(
                tx,
                tenant=self.tenant,
                kind=PrincipalKind.USER,
                name=name,
                display_name="",
                actor=ACTOR,
            )
            if password is not None:
                self.identity.passwords.set_password(tx, user, password, now=self.clock.now())
        return user

    def principal(self, name: str, kind: PrincipalKind) -> Principal:
        return self.identity.directory.create(
            tenant_name="default", kind=kind, name=name, actor=ACTOR
        )


def config_text(url: str, extra: str = "") -> str:
    return f"storage:\n  url: {url}\nsecurity:\n  pepper: {PEPPER}\n{extra}"


def make_world(
    url: str, *, clock: FrozenClock | None = None, storage: Storage | None = None, extra: str = ""
) -> World:
    clock = clock or FrozenClock()
    config = parse_config(config_text(url, extra), source="test", environ={})
    services = build_services(config, clock=clock, storage=storage)
    services.storage.migrate()
    # Cheap Argon2id parameters: these tests count attempts, not milliseconds.
    services.identity.passwords.hasher = PasswordHasher(memory_kib=256, time_cost=1)
    try:
        boot = initialise(
            storage=services.storage,
            api_keys=services.api_keys,
            clock=clock,
            tenant_name="default",
            admin_name="admin@example.com",
            actor=ACTOR,
        )
    except Exception:
        boot = None  # type: ignore[assignment]
    return World(services, clock, boot)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def world(clock: FrozenClock) -> Iterator[World]:
    built = make_world("sqlite:///unused.db", clock=clock, storage=MemoryStorage())
    yield built
    built.services.identity.close()


@pytest.fixture
def sql_world(clock: FrozenClock, tmp_path: Path) -> Iterator[World]:
    built = make_world(f"sqlite:///{tmp_path}/bastion.db", clock=clock)
    yield built
    built.services.identity.close()
    built.services.storage.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_world(
    request: pytest.FixtureRequest, clock: FrozenClock, tmp_path: Path
) -> Iterator[World]:
    """A world on memory, SQLite and PostgreSQL in turn."""
    if request.param == "memory":
        built = make_world("sqlite:///unused.db", clock=clock, storage=MemoryStorage())
    elif request.param == "sqlite":
        built = make_world(f"sqlite:///{tmp_path}/bastion.db", clock=clock)
    else:
        built = make_world(request.getfixturevalue("clean_postgres_url"), clock=clock)
    yield built
    built.services.identity.close()
    built.services.storage.close()
