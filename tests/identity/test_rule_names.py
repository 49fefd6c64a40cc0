"""Stored resource rules name only users and roles that exist, and forget a deleted one's name:
a user or custom role created under a deleted one's name is never admitted by the rules that
admitted its namesake, and a rule cannot name a user or role that does not exist. On memory,
SQLite and PostgreSQL, through the services the API and the CLI share."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.model import AuditQuery, PrincipalKind, ResourceRuleRecord, SubjectType
from bastion.errors import ConflictError, RequestRejectedError
from bastion.services.authz_checks import CheckQuery
from tests.identity.conftest import ACTOR, World

VAULT = "patterns/vault"


def add_rule(world: World, users: list[str], roles: list[str]) -> ResourceRuleRecord:
    return world.services.authz.admin.add_rule(
        tenant_name="default",
        resource=VAULT,
        allowed_users=users,
        allowed_roles=roles,
        actions=[],
        actor=ACTOR,
    )


def admin_user(world: World, name: str, role: str = "admin") -> None:
    """A user who passes RBAC for everything, so only the rule decides."""
    world.principal(name, PrincipalKind.USER)
    world.services.authz.admin.bind(
        tenant_name="default",
        subject_type=SubjectType.USER,
        subject_name=name,
        role=role,
        expires_at=None,
        actor=ACTOR,
    )


def may_open_vault(world: World, name: str) -> bool:
    query = CheckQuery(principal=name, action="execute", resource=VAULT)
    return world.services.authz.checks.check(query).decision.allowed


def stored_rule(world: World, rule_id: str) -> ResourceRuleRecord:
    with world.services.storage.transaction() as tx:
        return tx.resource_rules.get(world.tenant.id, rule_id)


def last_event(world: World, action: str) -> Any:
    with world.services.storage.transaction() as tx:
        return tx.audit.query(AuditQuery(action=action, limit=1000))[-1]


def authz_version(world: World) -> int:
    with world.services.storage.transaction() as tx:
        return tx.authz_versions.current()


def save_role(world: World, name: str, permissions: list[str]) -> None:
    world.services.authz.admin.save_role(
        tenant_name="default",
        name=name,
        permissions=permissions,
        inherits=[],
        actor=ACTOR,
        create=True,
    )


def test_a_deleted_users_place_in_a_rule_does_not_pass_to_a_new_user_of_the_same_name(
    any_world: World,
) -> None:
    world = any_world
    admin_user(world, "bob@example.com")
    admin_user(world, "alice@example.com")
    rule = add_rule(world, ["Bob@Example.com"], [])
    assert may_open_vault(world, "bob@example.com")
    assert not may_open_vault(world, "alice@example.com")
    before = authz_version(world)
    world.identity.directory.delete(
        tenant_name="default", kind=PrincipalKind.USER, name="bob@example.com", actor=ACTOR
    )
    assert stored_rule(world, rule.id).allowed_users == ()
    assert authz_version(world) > before  # every replica drops its compiled models
    assert last_event(world, "user.delete").details["rulesUpdated"] == [rule.id]
    admin_user(world, "bob@example.com")  # a new bob, administrator like the old one
    assert not may_open_vault(world, "bob@example.com")  # the rule now admits nobody
    assert "staleRulesUpdated" not in last_event(world, "user.create").details


def test_a_deleted_service_account_leaves_a_rule_naming_a_user_of_its_name_alone(
    any_world: World,
) -> None:
    world = any_world
    admin_user(world, "bob@example.com")
    world.principal("ci-bot", PrincipalKind.SERVICE_ACCOUNT)
    rule = add_rule(world, ["bob@example.com"], [])
    world.identity.directory.delete(
        tenant_name="default", kind=PrincipalKind.SERVICE_ACCOUNT, name="ci-bot", actor=ACTOR
    )
    assert stored_rule(world, rule.id).allowed_users == ("bob@example.com",)
    assert "rulesUpdated" not in last_event(world, "serviceaccount.delete").details


def test_a_deleted_roles_place_in_a_rule_does_not_pass_to_a_new_role_of_the_same_name(
    any_world: World,
) -> None:
    world = any_world
    save_role(world, "lead", ["patterns:*"])
    admin_user(world, "bob@example.com", role="lead")
    rule = add_rule(world, [], ["lead", "viewer"])
    assert may_open_vault(world, "bob@example.com")
    before = authz_version(world)
    world.services.authz.admin.delete_role(tenant_name="default", name="lead", actor=ACTOR)
    assert stored_rule(world, rule.id).allowed_roles == ("viewer",)
    assert authz_version(world) > before
    assert last_event(world, "role.delete").details["rulesUpdated"] == [rule.id]
    save_role(world, "lead", ["*:*"])
    admin_user(world, "carol@example.com", role="lead")
    assert not may_open_vault(world, "carol@example.com")
    assert "staleRulesUpdated" not in last_event(world, "role.create").details


def test_names_an_earlier_bastion_left_in_a_rule_are_not_inherited(any_world: World) -> None:
    world = any_world
    left = ResourceRuleRecord(
        "rul_left",
        world.tenant.id,
        "patterns",
        "vault",
        ("bob@example.com",),
        ("lead",),
        (),
        world.clock.now(),
    )
    with world.services.storage.transaction() as tx:  # as a database written before the rule
        tx.resource_rules.create(left)
    admin_user(world, "Bob@Example.com")
    assert last_event(world, "user.create").details["staleRulesUpdated"] == ["rul_left"]
    assert not may_open_vault(world, "bob@example.com")
    save_role(world, "lead", ["*:*"])
    assert last_event(world, "role.create").details["staleRulesUpdated"] == ["rul_left"]
    assert stored_rule(world, "rul_left").allowed_roles == ()


@pytest.mark.parametrize(
    ("users", "roles", "message"),
    [
        (
            ["Ghost@Example.com"],
            [],
            "no user 'ghost@example.com' in tenant 'default'"
            r" \(create it before naming it in a resource rule\)",
        ),
        (["ci-bot"], [], "no user 'ci-bot'"),  # a service account is not a user
        ([], ["no-such-role"], "unknown role no-such-role"),
        ([], ["Admin"], "unknown role Admin"),  # roles are matched exactly
    ],
)
def test_a_rule_naming_a_user_or_role_that_does_not_exist_is_refused(
    any_world: World, users: list[str], roles: list[str], message: str
) -> None:
    world = any_world
    world.principal("ci-bot", PrincipalKind.SERVICE_ACCOUNT)
    with pytest.raises(RequestRejectedError, match=message):
        add_rule(world, users, roles)
    assert world.services.authz.admin.list_rules("default") == []


def test_a_rule_may_name_built_in_configured_and_custom_roles(world: World) -> None:
    save_role(world, "lead", ["patterns:read"])
    world.principal("bob@example.com", PrincipalKind.USER)
    rule = add_rule(world, ["bob@example.com"], ["admin", "lead"])
    assert stored_rule(world, rule.id).allowed_roles == ("admin", "lead")


def test_names_the_rules_are_searched_by_are_matched_exactly(any_world: World) -> None:
    # The stores find rules by their stored JSON text first: quotes, LIKE's wildcards, case
    # and characters JSON escapes must neither hide a rule nor match another one.
    world = any_world
    names = ["zoë@example.com", "a_b%c@example.com", 'q"x@example.com', "axbyc@example.com"]
    for name in names:
        world.principal(name, PrincipalKind.USER)
    rule = add_rule(world, names, [])
    save_role(world, "Lead_%", ["patterns:read"])
    other = world.services.authz.admin.add_rule(
        tenant_name="default",
        resource="patterns/other",
        allowed_users=[],
        allowed_roles=["viewer", "Lead_%"],
        actions=[],
        actor=ACTOR,
    )
    for name in names[:3]:
        world.identity.directory.delete(
            tenant_name="default", kind=PrincipalKind.USER, name=name, actor=ACTOR
        )
        assert last_event(world, "user.delete").details["rulesUpdated"] == [rule.id]
    assert stored_rule(world, rule.id).allowed_users == ("axbyc@example.com",)
    world.services.authz.admin.delete_role(tenant_name="default", name="Lead_%", actor=ACTOR)
    assert last_event(world, "role.delete").details["rulesUpdated"] == [other.id]
    assert stored_rule(world, other.id).allowed_roles == ("viewer",)


def test_a_second_rule_on_an_instance_is_refused_naming_the_first(any_world: World) -> None:
    world = any_world
    world.principal("bob@example.com", PrincipalKind.USER)
    first = add_rule(world, ["bob@example.com"], [])
    with pytest.raises(ConflictError, match=f"{VAULT} already has rule {first.id} "):
        add_rule(world, [], ["admin"])
    assert world.services.authz.admin.list_rules("default") == [first]
