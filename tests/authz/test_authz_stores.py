"""The authorization stores on every backend (memory, SQLite, PostgreSQL): tenant-scoped reads,
conflicts, and the version that moves with every change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bastion.backends import open_storage
from bastion.backends.protocols import Storage
from bastion.core.model import CustomRole, ResourceRuleRecord, RoleBinding, SubjectType, Tenant
from bastion.errors import ConflictError, NotFoundError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("clean_postgres_url")
    opened = open_storage(url)
    opened.migrate()
    with opened.transaction() as tx:
        tx.tenants.create(Tenant("ten-a", "a", T0))
        tx.tenants.create(Tenant("ten-b", "b", T0))
    yield opened
    opened.close()


def role(tenant: str, name: str, *inherits: str) -> CustomRole:
    return CustomRole(f"rol-{tenant}-{name}", tenant, name, ("x:read",), inherits, T0, T0)


def test_roles_are_per_tenant(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.roles.create(role("ten-a", "auditor", "viewer"))
        tx.roles.create(role("ten-b", "auditor"))
    with storage.transaction() as tx:
        assert tx.roles.get("ten-a", "auditor").inherits == ("viewer",)
        assert tx.roles.get("ten-b", "auditor").inherits == ()
        assert [r.name for r in tx.roles.list("ten-a")] == ["auditor"]
        with pytest.raises(NotFoundError):
            tx.roles.get("ten-a", "nobody")
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.roles.create(CustomRole("rol-x", "ten-a", "auditor", (), (), T0, T0))


def test_role_update_and_delete_stay_in_their_tenant(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.roles.create(role("ten-a", "r"))
    with pytest.raises(NotFoundError), storage.transaction() as tx:
        tx.roles.delete("ten-b", "r")
    with pytest.raises(NotFoundError), storage.transaction() as tx:
        tx.roles.update(CustomRole("rol-b-r", "ten-b", "r", ("y:read",), (), T0, T0))
    with storage.transaction() as tx:
        tx.roles.update(CustomRole("ignored", "ten-a", "r", ("y:read",), ("viewer",), T0, T0))
        assert tx.roles.get("ten-a", "r").permissions == ("y:read",)
        tx.roles.delete("ten-a", "r")
        assert tx.roles.list("ten-a") == []


def test_rules_one_per_instance_per_tenant(storage: Storage) -> None:
    def rule(rule_id: str, tenant: str) -> ResourceRuleRecord:
        return ResourceRuleRecord(rule_id, tenant, "patterns", "x", ("u",), ("r",), (), T0)

    with storage.transaction() as tx:
        tx.resource_rules.create(rule("r1", "ten-a"))
        tx.resource_rules.create(rule("r2", "ten-b"))
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.resource_rules.create(rule("r3", "ten-a"))
    with storage.transaction() as tx:
        assert tx.resource_rules.get("ten-a", "r1").allowed_users == ("u",)
        with pytest.raises(NotFoundError):
            tx.resource_rules.get("ten-a", "r2")
        with pytest.raises(NotFoundError):
            tx.resource_rules.delete("ten-a", "r2")
        tx.resource_rules.delete("ten-a", "r1")
        assert [r.id for r in tx.resource_rules.list("ten-b")] == ["r2"]


def test_rules_naming_a_user_or_role_and_their_update_stay_in_their_tenant(
    storage: Storage,
) -> None:
    def rule(
        rule_id: str, tenant: str, users: tuple[str, ...], roles: tuple[str, ...]
    ) -> ResourceRuleRecord:
        return ResourceRuleRecord(rule_id, tenant, "patterns", rule_id, users, roles, (), T0)

    with storage.transaction() as tx:
        tx.resource_rules.create(rule("r1", "ten-a", ("U_1", "bö"), ("lead",)))
        tx.resource_rules.create(rule("r2", "ten-a", ("u_1",), ("Lead", "lead%")))
        tx.resource_rules.create(rule("r3", "ten-b", ("U_1",), ("lead",)))
    with storage.transaction() as tx:
        naming = tx.resource_rules.naming
        assert [r.id for r in naming("ten-a", user="U_1")] == ["r1"]
        assert [r.id for r in naming("ten-a", user="u_1")] == ["r2"]  # case counts
        assert [r.id for r in naming("ten-a", user="uX1")] == []  # _ is no wildcard
        assert [r.id for r in naming("ten-a", user="bö")] == ["r1"]
        assert [r.id for r in naming("ten-a", role="lead")] == ["r1"]
        assert [r.id for r in naming("ten-a", role="lead%")] == ["r2"]
        assert [r.id for r in naming("ten-a", user="bö", role="Lead")] == ["r1", "r2"]
        assert naming("ten-a") == []
        start = tx.authz_versions.current()
        changed = rule("r1", "ten-a", ("bö",), ())
        tx.resource_rules.update(changed)
        assert tx.resource_rules.get("ten-a", "r1") == changed
        assert tx.authz_versions.current() == start + 1
        with pytest.raises(NotFoundError):
            tx.resource_rules.update(rule("r3", "ten-a", (), ()))
        assert tx.resource_rules.get("ten-b", "r3").allowed_users == ("U_1",)


def test_rules_come_in_pages_by_resource_in_code_point_order(storage: Storage) -> None:
    instances = [("patterns", "b"), ("patterns", "é"), ("agents", "z"), ("patterns", "B")]
    with storage.transaction() as tx:
        for n, (kind, name) in enumerate(instances):
            tx.resource_rules.create(
                ResourceRuleRecord(f"r{n}", "ten-a", kind, name, (), (), (), T0)
            )
        tx.resource_rules.create(ResourceRuleRecord("rb", "ten-b", "agents", "a", (), (), (), T0))
    with storage.transaction() as tx:
        page = tx.resource_rules.page
        whole = [(r.resource_type, r.resource_id) for r in page("ten-a", after=None, limit=None)]
        assert whole == [("agents", "z"), ("patterns", "B"), ("patterns", "b"), ("patterns", "é")]
        after = page("ten-a", after=("agents", "z"), limit=2)
        assert [(r.resource_type, r.resource_id) for r in after] == whole[1:3]
        assert page("ten-a", after=("patterns", "é"), limit=5) == []
        assert tx.resource_rules.list("ten-a") == page("ten-a", after=None, limit=None)


def test_binding_get_and_delete_are_tenant_scoped(storage: Storage) -> None:
    binding = RoleBinding("b1", "ten-a", SubjectType.USER, "u", "viewer", T0)
    with storage.transaction() as tx:
        tx.bindings.create(binding)
    with storage.transaction() as tx:
        with pytest.raises(NotFoundError):
            tx.bindings.get("ten-b", "b1")
        with pytest.raises(NotFoundError):
            tx.bindings.delete("ten-b", "b1")
        assert tx.bindings.delete("ten-a", "b1") == binding
        assert tx.bindings.list("ten-a") == []


def test_every_change_moves_the_version_and_a_rollback_does_not(storage: Storage) -> None:
    with storage.transaction() as tx:
        start = tx.authz_versions.current()
        tx.bindings.create(RoleBinding("b1", "ten-a", SubjectType.GROUP, "g", "viewer", T0))
        tx.roles.create(role("ten-a", "r"))
        tx.resource_rules.create(ResourceRuleRecord("r1", "ten-a", "patterns", "x", (), (), (), T0))
    with storage.transaction() as tx:
        assert tx.authz_versions.current() == start + 3
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.roles.delete("ten-a", "r")
        raise RuntimeError("roll back")
    with storage.transaction() as tx:
        assert tx.authz_versions.current() == start + 3
        assert tx.authz_versions.bump() == start + 4
