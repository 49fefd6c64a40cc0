"""Stored role bindings live exactly as long as their subject and their role: a principal or
group created under a deleted one's name never inherits its roles, a role created under a deleted
one's name is held by nobody, and a binding cannot name a subject that does not exist. On
memory, SQLite and PostgreSQL, through the services the API and the CLI share."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.model import AuditQuery, PrincipalKind, RoleBinding, SubjectType
from bastion.errors import RequestRejectedError
from bastion.services.authz_checks import CheckQuery
from tests.identity.conftest import ACTOR, World


def bind(world: World, subject_type: SubjectType, name: str, role: str = "admin") -> RoleBinding:
    return world.services.authz.admin.bind(
        tenant_name="default",
        subject_type=subject_type,
        subject_name=name,
        role=role,
        expires_at=None,
        actor=ACTOR,
    )


def may_delete_users(world: World, name: str) -> bool:
    query = CheckQuery(principal=name, action="delete", resource="users")
    return world.services.authz.checks.check(query).decision.allowed


def binding_ids(world: World) -> set[str]:
    return {b.id for b in world.services.authz.admin.list_bindings("default")}


def last_event(world: World, action: str) -> Any:
    with world.services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action=action, limit=1000))
    return events[-1]


def authz_version(world: World) -> int:
    with world.services.storage.transaction() as tx:
        return tx.authz_versions.current()


def principal_takes_its_bindings(world: World, kind: PrincipalKind, name: str) -> None:
    """Bind admin to ``name``, delete it, create it again: the newcomer holds nothing."""
    subject = SubjectType(kind.value)
    world.principal(name, kind)
    binding = bind(world, subject, name)
    assert may_delete_users(world, name)
    before = authz_version(world)
    world.identity.directory.delete(tenant_name="default", kind=kind, name=name, actor=ACTOR)
    assert binding.id not in binding_ids(world)
    assert authz_version(world) > before  # every replica drops its compiled models
    noun = {"user": "user", "serviceAccount": "serviceaccount", "agent": "agent"}[kind.value]
    assert last_event(world, f"{noun}.delete").details["bindingsDeleted"] == [binding.id]
    world.principal(name, kind)
    assert not may_delete_users(world, name)
    with world.services.storage.transaction() as tx:
        assert tx.bindings.for_subject(world.tenant.id, subject, name) == []


def test_deleted_user_bindings_do_not_pass_to_a_new_user_of_the_same_name(
    any_world: World,
) -> None:
    principal_takes_its_bindings(any_world, PrincipalKind.USER, "bob@example.com")


def test_deleted_service_account_bindings_do_not_pass_to_a_new_one_of_the_same_name(
    any_world: World,
) -> None:
    principal_takes_its_bindings(any_world, PrincipalKind.SERVICE_ACCOUNT, "ci-bot")


def test_deleted_agent_bindings_do_not_pass_to_a_new_agent_of_the_same_name(
    any_world: World,
) -> None:
    principal_takes_its_bindings(any_world, PrincipalKind.AGENT, "classifier-1")


def test_deleted_group_bindings_do_not_pass_to_a_new_group_of_the_same_name(
    any_world: World,
) -> None:
    world = any_world
    groups = world.identity.groups
    world.principal("carol@example.com", PrincipalKind.USER)
    groups.create(tenant_name="default", name="ops", actor=ACTOR)
    groups.add_member(tenant_name="default", name="ops", member="carol@example.com", actor=ACTOR)
    binding = bind(world, SubjectType.GROUP, "ops")
    assert may_delete_users(world, "carol@example.com")
    before = authz_version(world)
    groups.delete(tenant_name="default", name="OPS", actor=ACTOR)
    assert binding.id not in binding_ids(world)
    assert authz_version(world) > before
    assert last_event(world, "group.delete").details["bindingsDeleted"] == [binding.id]
    groups.create(tenant_name="default", name="ops", actor=ACTOR)
    groups.add_member(tenant_name="default", name="ops", member="carol@example.com", actor=ACTOR)
    assert not may_delete_users(world, "carol@example.com")


def test_bindings_to_a_deleted_role_do_not_pass_to_a_new_role_of_the_same_name(
    any_world: World,
) -> None:
    world, admin = any_world, any_world.services.authz.admin

    def lead(permissions: list[str]) -> None:
        admin.save_role(
            tenant_name="default",
            name="lead",
            permissions=permissions,
            inherits=[],
            actor=ACTOR,
            create=True,
        )

    world.principal("bob@example.com", PrincipalKind.USER)
    lead(["patterns:read"])
    binding = bind(world, SubjectType.USER, "bob@example.com", role="lead")
    kept = bind(world, SubjectType.USER, "bob@example.com", role="viewer")
    before = authz_version(world)
    admin.delete_role(tenant_name="default", name="lead", actor=ACTOR)
    assert binding.id not in binding_ids(world) and kept.id in binding_ids(world)
    assert authz_version(world) > before
    assert last_event(world, "role.delete").details["bindingsDeleted"] == [binding.id]
    lead(["*:*"])  # a later role of the same name, however wide, is not bob's
    assert not may_delete_users(world, "bob@example.com")
    assert "staleBindingsDeleted" not in last_event(world, "role.create").details


def test_a_new_role_deletes_bindings_an_earlier_bastion_left_under_its_name(
    any_world: World,
) -> None:
    world = any_world
    bob = world.principal("bob@example.com", PrincipalKind.USER)
    stale = RoleBinding(
        "bnd-old", bob.tenant_id, SubjectType.USER, bob.name, "lead", bob.created_at
    )
    with world.services.storage.transaction() as tx:  # as a database written before the rule
        tx.bindings.create(stale)
    world.services.authz.admin.save_role(
        tenant_name="default",
        name="lead",
        permissions=["*:*"],
        inherits=[],
        actor=ACTOR,
        create=True,
    )
    assert "bnd-old" not in binding_ids(world)
    assert last_event(world, "role.create").details["staleBindingsDeleted"] == ["bnd-old"]
    assert not may_delete_users(world, "bob@example.com")


def test_a_new_principal_never_meets_a_deleted_namesakes_cached_access(world: World) -> None:
    # A subscribed broadcast: the stored version is read at most once a second, so the
    # compiled access of the deleted bob is still cached when the new bob is decided.
    world.services.authorizer.broadcast_health(True)
    world.principal("bob@example.com", PrincipalKind.USER)
    bind(world, SubjectType.USER, "bob@example.com")
    assert may_delete_users(world, "bob@example.com")
    world.identity.directory.delete(
        tenant_name="default", kind=PrincipalKind.USER, name="bob@example.com", actor=ACTOR
    )
    world.principal("bob@example.com", PrincipalKind.USER)
    assert not may_delete_users(world, "bob@example.com")


@pytest.mark.parametrize("subject_type", list(SubjectType))
def test_binding_a_role_to_a_subject_that_does_not_exist_is_refused(
    world: World, subject_type: SubjectType
) -> None:
    label = {
        SubjectType.USER: "user",
        SubjectType.SERVICE_ACCOUNT: "service account",
        SubjectType.AGENT: "agent",
        SubjectType.GROUP: "group",
    }[subject_type]
    before = binding_ids(world)
    expected = f"no {label} 'ghost@example.com' in tenant 'default'"
    with pytest.raises(RequestRejectedError, match=expected):
        bind(world, subject_type, "Ghost@Example.com")
    assert binding_ids(world) == before


def test_a_binding_must_name_the_kind_its_subject_is(world: World) -> None:
    world.principal("ci-bot", PrincipalKind.SERVICE_ACCOUNT)
    with pytest.raises(RequestRejectedError, match="no user 'ci-bot'"):
        bind(world, SubjectType.USER, "ci-bot")
    with pytest.raises(RequestRejectedError, match="no group 'ci-bot'"):
        bind(world, SubjectType.GROUP, "ci-bot")
    assert bind(world, SubjectType.SERVICE_ACCOUNT, "CI-Bot").subject_name == "ci-bot"


def leftover(world: World, subject_type: SubjectType, name: str) -> RoleBinding:
    """A binding whose subject is gone, as a bastion that kept them on delete left it."""
    binding = RoleBinding(
        f"bnd_left_{subject_type}", world.tenant.id, subject_type, name, "admin", world.clock.now()
    )
    with world.services.storage.transaction() as tx:
        tx.bindings.create(binding)
    return binding


def test_leftover_bindings_of_a_deleted_user_are_not_inherited_by_a_new_one(
    any_world: World,
) -> None:
    world = any_world
    stale = leftover(any_world, SubjectType.USER, "bob@example.com")
    world.principal("Bob@Example.com", PrincipalKind.USER)
    assert stale.id not in binding_ids(world)
    assert last_event(world, "user.create").details["staleBindingsDeleted"] == [stale.id]
    assert not may_delete_users(world, "bob@example.com")


def test_leftover_bindings_of_a_deleted_group_are_not_inherited_by_a_new_one(
    any_world: World,
) -> None:
    world = any_world
    stale = leftover(world, SubjectType.GROUP, "ops")
    world.principal("carol@example.com", PrincipalKind.USER)
    world.identity.groups.create(tenant_name="default", name="ops", actor=ACTOR)
    assert stale.id not in binding_ids(world)
    assert last_event(world, "group.create").details["staleBindingsDeleted"] == [stale.id]
    world.identity.groups.add_member(
        tenant_name="default", name="ops", member="carol@example.com", actor=ACTOR
    )
    assert not may_delete_users(world, "carol@example.com")
