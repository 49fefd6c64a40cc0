"""The pure pieces of the engine: compiled access, expiry, scopes, rules, stage combination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bastion.core.cedar_schema import generate_schema, principal_entities
from bastion.core.decision import Check
from bastion.core.engine import CedarOutcome, check_tenant, combine
from bastion.core.grants import BindingGrant, ScopeIndex, compile_access
from bastion.core.rbac import compile_roles
from bastion.core.resource_rules import ResourceRule, RuleIndex, check_rules

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROLES = compile_roles([])
PASS = Check("tenant", True, ("ok",))


def test_compiled_access_is_valid_until_the_next_expiry() -> None:
    soon, later = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    access = compile_access(
        [BindingGrant("viewer", "b1", later), BindingGrant("developer", "b2", soon)],
        ROLES,
        now=NOW,
    )
    assert access.valid_until == soon
    assert access.fresh(soon - timedelta(seconds=1)) and not access.fresh(soon)


def test_expired_binding_grants_nothing_and_default_role_takes_over() -> None:
    access = compile_access(
        [BindingGrant("admin", "b1", NOW)], ROLES, now=NOW, default_role="viewer"
    )
    assert access.grant_for("patterns", "delete") is None
    grant = access.grant_for("patterns", "read")
    assert grant is not None and grant.via == "security.rbac.defaultRole"


def test_binding_to_unknown_role_counts_as_bound_but_grants_nothing() -> None:
    access = compile_access([BindingGrant("ghost", "b1")], ROLES, now=NOW, default_role="admin")
    assert access.grant_for("patterns", "read") is None
    assert access.held == "ghost"


def test_wildcards_match_literally_in_the_index() -> None:
    access = compile_access([BindingGrant("viewer", "b1")], ROLES, now=NOW)
    assert access.grant_for("*", "read") is not None
    assert access.grant_for("*", "*") is None


def test_the_first_binding_that_grants_is_the_one_named() -> None:
    access = compile_access(
        [BindingGrant("viewer", "b1"), BindingGrant("admin", "b2"), BindingGrant("viewer", "b3")],
        ROLES,
        now=NOW,
    )
    assert [access.grant_for("patterns", a).via for a in ("read", "delete")] == ["b1", "b2"]
    assert access.grant_for("anything", "read").via == "b1"  # through viewer's *:read


def test_a_principal_with_hundreds_of_bindings_still_finds_the_first() -> None:
    offered = [BindingGrant("viewer", f"b{i}") for i in range(300)] + [
        BindingGrant("admin", "last")
    ]
    access = compile_access(offered, ROLES, now=NOW)
    assert access.grant_for("patterns", "read").via == "b0"
    assert access.grant_for("patterns", "delete").via == "last"
    assert compile_access(offered[:300], ROLES, now=NOW).grant_for("patterns", "delete") is None


def test_scope_index_write_and_admin() -> None:
    scopes = ScopeIndex(["patterns:write"])
    assert scopes.scope_for("patterns", "update") == "patterns:write"
    assert scopes.scope_for("patterns", "delete") is None
    assert ScopeIndex(["admin"]).scope_for("x", "y") == "admin"


def test_rule_with_empty_lists_admits_nobody() -> None:
    rule = ResourceRule("patterns", "x", frozenset(), frozenset(), None, "r")
    check = check_rules(
        [rule], principal="a", roles=frozenset({"admin"}), action="read", is_user=True
    )
    assert check is not None and check.passed is False


def test_allowed_users_admit_a_user_never_an_agent_or_account_of_the_same_name() -> None:
    rule = ResourceRule("patterns", "x", frozenset({"alice@example.com"}), frozenset(), None, "r")
    user = check_rules(
        [rule], principal="alice@example.com", roles=frozenset(), action="read", is_user=True
    )
    agent = check_rules(
        [rule], principal="alice@example.com", roles=frozenset(), action="read", is_user=False
    )
    assert user is not None and user.passed
    assert agent is not None and not agent.passed


def test_rule_index_ignores_collection_requests() -> None:
    rule = ResourceRule("patterns", "x", frozenset({"a"}), frozenset(), None, "r")
    assert RuleIndex([rule]).rules_for("patterns", None) == ()
    assert len(RuleIndex([rule]).rules_for("patterns", "x")) == 1


def test_forbid_beats_rbac_and_permit_needs_no_rbac() -> None:
    rbac_yes = Check("rbac", True, ("role",))
    rbac_no = Check("rbac", False, ("none",))
    assert not combine(
        tenant=PASS, rbac=rbac_yes, cedar=CedarOutcome(forbids=("f",)).check()
    ).allowed
    assert combine(tenant=PASS, rbac=rbac_no, cedar=CedarOutcome(permits=("p",)).check()).allowed
    assert not combine(tenant=PASS, rbac=rbac_no, cedar=CedarOutcome().check()).allowed
    errored = CedarOutcome(permits=("p",), errors=("boom",)).check()
    assert not combine(tenant=PASS, rbac=rbac_yes, cedar=errored).allowed


def test_a_decision_has_no_truth_value() -> None:
    import pytest

    with pytest.raises(TypeError):
        bool(combine(tenant=PASS, rbac=Check("rbac", False, ("none",))))


def test_permit_does_not_cross_tenants_or_scopes() -> None:
    permit = CedarOutcome(permits=("p",)).check()
    rbac = Check("rbac", False, ("none",))
    other = check_tenant(home="a", target="b", platform_via=None)
    assert not combine(tenant=other, rbac=rbac, cedar=permit).allowed
    narrowed = Check("scopes", False, ("no",))
    assert not combine(tenant=PASS, rbac=rbac, scopes=narrowed, cedar=permit).allowed


def test_schema_declares_principals_roles_and_route_resources() -> None:
    schema = generate_schema(["patterns", "audit-log", "*"], ["read", "*"])[""]
    assert {"User", "ServiceAccount", "Agent", "Group", "Role", "Tenant"} <= set(
        schema["entityTypes"]
    )
    assert {"patterns", "audit_log"} <= set(schema["entityTypes"])
    assert list(schema["actions"]) == ["read"]


def test_sliced_entities_hold_only_the_principal_its_groups_roles_and_tenant() -> None:
    text = principal_entities(
        kind="user",
        name="a@x",
        tenant="t",
        groups=["g"],
        roles={"viewer"},
        inherits={"viewer": ()},
    )
    assert text.count('"uid"') == 4
