"""Service tests run on the in-memory backend with a frozen clock that tests advance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bastion.backends.memory import MemoryStorage
from bastion.core.model import SubjectType
from bastion.core.rbac import compile_roles
from bastion.core.routes import PathSet, RouteSpec, RouteTable
from bastion.crypto.keys import KeyedHasher
from bastion.services.access import AccessService
from bastion.services.apikeys import ApiKeyService
from bastion.services.authn import Authenticator
from bastion.services.authz import Authorizer, StaticBinding
from bastion.services.bootstrap import Bootstrapped, initialise

ACTOR = {"type": "operator", "id": "tester", "via": "test"}


@dataclass
class FrozenClock:
    moment: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class World:
    clock: FrozenClock
    storage: MemoryStorage
    api_keys: ApiKeyService
    access: AccessService
    boot: Bootstrapped


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def world(clock: FrozenClock) -> World:
    storage = MemoryStorage()
    storage.migrate()
    api_keys = ApiKeyService(storage=storage, hasher=KeyedHasher(b"p" * 32), clock=clock)
    routes = RouteTable(
        [
            RouteSpec("GET", "/api/patterns", "patterns", "read", "patterns:read", "pattern.read"),
            RouteSpec(
                "POST",
                "/api/patterns/{id}/execute",
                "patterns",
                "execute",
                "executions:create",
                "pattern.execute",
                "{id}",
            ),
        ]
    )
    authorizer = Authorizer(
        roles=compile_roles([]),
        static_bindings=[StaticBinding(SubjectType.SERVICE_ACCOUNT, "ci-bot", "developer")],
    )
    access = AccessService(
        storage=storage,
        authenticator=Authenticator([api_keys]),
        authorizer=authorizer,
        routes=routes,
        public_paths=PathSet(["/health"]),
        clock=clock,
    )
    boot = initialise(
        storage=storage,
        api_keys=api_keys,
        clock=clock,
        tenant_name="default",
        admin_name="Admin@Example.com",
        actor=ACTOR,
    )
    return World(clock, storage, api_keys, access, boot)
