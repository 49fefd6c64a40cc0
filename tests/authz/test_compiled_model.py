"""The compiled model stays true without a restart: expiry, local changes, other replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bastion.backends.sql import SQLStorage
from bastion.config import parse_config
from bastion.core.model import Principal, PrincipalKind, SubjectType
from bastion.services.access import RequestFacts
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services
from tests.authz.golden import GoldenClock

ACTOR = {"type": "operator", "id": "tester"}
CONFIG = """
security:
  pepper: {pepper}
gateway:
  routes:
    - method: DELETE
      path: "/api/patterns/{{id}}"
      resource: patterns
      action: delete
"""


def world(storage_url: str, clock: GoldenClock) -> Services:
    config = parse_config(CONFIG.format(pepper="p" * 40), source="test", environ={})
    storage = SQLStorage(storage_url)
    storage.migrate()
    return build_services(config, clock=clock, storage=storage)


def delete(services: Services, key: str) -> bool:
    facts = RequestFacts("DELETE", "/api/patterns/x", key, "127.0.0.1", "t", "r")
    return services.access.check(facts).allowed


def setup(services: Services) -> str:
    done = initialise(
        storage=services.storage,
        api_keys=services.api_keys,
        clock=services.clock,
        tenant_name="default",
        admin_name="admin@example.com",
        actor=ACTOR,
    )
    services.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="unused",
        scopes=["admin"],
        expires_at=None,
        actor=ACTOR,
    )
    return done.admin_key.secret


def test_expired_binding_stops_granting_at_expiry_without_restart(tmp_path: Path) -> None:
    clock = GoldenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    services = world(f"sqlite:///{tmp_path}/a.db", clock)
    setup(services)
    with services.storage.transaction() as tx:
        tenant = tx.tenants.get_by_name("default")
        tx.principals.create(
            Principal("usr_t", tenant.id, PrincipalKind.USER, "temp@example.com", clock.moment)
        )
    services.authz.admin.bind(
        tenant_name="default",
        subject_type=SubjectType.USER,
        subject_name="temp@example.com",
        role="operator",
        expires_at=clock.moment + timedelta(hours=1),
        actor=ACTOR,
    )
    key = services.api_keys.create(
        tenant_name="default",
        owner_name="temp@example.com",
        name="temp",
        scopes=["admin"],
        expires_at=None,
        actor=ACTOR,
    ).secret
    assert delete(services, key)  # compiled and cached now
    clock.moment += timedelta(minutes=59, seconds=59)
    assert delete(services, key)
    clock.moment += timedelta(seconds=1)
    assert not delete(services, key)


def test_binding_removed_through_admin_denies_at_once(tmp_path: Path) -> None:
    clock = GoldenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    services = world(f"sqlite:///{tmp_path}/a.db", clock)
    admin_key = setup(services)
    assert delete(services, admin_key)
    [binding] = services.authz.admin.list_bindings("default")
    services.authz.admin.unbind(tenant_name="default", binding_id=binding.id, actor=ACTOR)
    assert not delete(services, admin_key)


def test_other_replica_sees_a_change_through_the_stored_version(tmp_path: Path) -> None:
    clock = GoldenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    url = f"sqlite:///{tmp_path}/a.db"
    first, second = world(url, clock), world(url, clock)
    admin_key = setup(first)
    assert delete(second, admin_key)  # the second replica compiled the admin's access
    [binding] = first.authz.admin.list_bindings("default")
    first.authz.admin.unbind(tenant_name="default", binding_id=binding.id, actor=ACTOR)
    assert not delete(second, admin_key)


def test_a_binding_created_by_any_service_moves_the_version(tmp_path: Path) -> None:
    clock = GoldenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    services = world(f"sqlite:///{tmp_path}/a.db", clock)
    with services.storage.transaction() as tx:
        before = tx.authz_versions.current()
    setup(services)  # bootstrap writes a binding through the plain binding store
    with services.storage.transaction() as tx:
        assert tx.authz_versions.current() > before
