"""Differential test: bastion's decision against the same model compiled to Cedar (cedarpy),
over thousands of random models and requests — zero disagreements allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cedarpy
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.core.grants import BindingGrant, compile_access
from bastion.core.model import Principal, PrincipalKind, Tenant
from bastion.core.rbac import Permission, RoleDefinition, compile_roles
from bastion.core.resource_rules import ResourceRule, RuleIndex
from bastion.services.authz import Authorizer, AuthzContext, AuthzRequest, Subject
from bastion.services.authz_model import AuthzSettings, TenantModel
from tests.authz import cedar_model
from tests.authz.cedar_model import ACTIONS, BUILTIN, RESOURCES, Model

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
GROUPS = ("g0", "g1", "g2")
IDS = ("a", "b")
PERMS = st.tuples(st.sampled_from((*RESOURCES, "*")), st.sampled_from((*ACTIONS, "*")))
SCOPES = st.sampled_from(
    ("admin", "patterns:read", "patterns:write", "*:read", "executions:*", "agents:manage")
)
EXPIRY = st.sampled_from((None, NOW - timedelta(seconds=1), NOW, NOW + timedelta(seconds=1)))


@st.composite
def models(draw: st.DrawFn) -> Model:
    roles: dict[str, tuple[list[tuple[str, str]], list[str]]] = {}
    for index in range(draw(st.integers(0, 4))):
        known = [*BUILTIN, *roles]
        perms = draw(st.lists(PERMS, max_size=4))
        inherits = draw(st.lists(st.sampled_from(known), max_size=2, unique=True))
        roles[f"c{index}"] = (perms, inherits)
    role_names = [*BUILTIN, *roles, "ghost"]
    users = ["u0", "u1", "u2", "u3"]
    members = {g: draw(st.lists(st.sampled_from(users), max_size=3, unique=True)) for g in GROUPS}
    subject = st.one_of(
        st.tuples(st.just("user"), st.sampled_from(users)),
        st.tuples(st.just("group"), st.sampled_from(GROUPS)),
    )
    bindings = [
        (kind, name, draw(st.sampled_from(role_names)), draw(EXPIRY))
        for kind, name in draw(st.lists(subject, max_size=6))
    ]
    rules = {}
    for _ in range(draw(st.integers(0, 2))):
        key = (draw(st.sampled_from(RESOURCES)), draw(st.sampled_from(IDS)))
        rules[key] = (
            draw(st.lists(st.sampled_from(users), max_size=2, unique=True)),
            draw(st.lists(st.sampled_from([*role_names[:-1]]), max_size=2, unique=True)),
            draw(st.one_of(st.none(), st.lists(st.sampled_from((*ACTIONS, "*")), max_size=2))),
        )
    default = draw(st.one_of(st.none(), st.sampled_from(role_names[:-1])))
    return Model(roles, members, bindings, default, rules, NOW)


REQUESTS = st.lists(
    st.tuples(
        st.sampled_from(("u0", "u1", "u2", "u3")),
        st.sampled_from(RESOURCES),
        st.sampled_from((None, *IDS)),
        st.sampled_from(ACTIONS),
        st.one_of(st.none(), st.lists(SCOPES, min_size=1, max_size=3)),
    ),
    min_size=8,
    max_size=8,
)


def bastion_decisions(model: Model, requests: list[Any]) -> list[bool]:
    custom = [
        RoleDefinition(n, tuple(Permission(r, a) for r, a in perms), tuple(inh))
        for n, (perms, inh) in model.roles.items()
    ]
    catalog = compile_roles(custom)
    rules = RuleIndex(
        ResourceRule(
            r, i, frozenset(u), frozenset(ro), frozenset(a) if a is not None else None, "rule"
        )
        for (r, i), (u, ro, a) in model.rules.items()
    )
    tenant = Tenant("t", "default", NOW)
    tenant_model = TenantModel(tenant, catalog, rules, {})
    authorizer = Authorizer(settings=AuthzSettings(roles=custom, default_role=model.default_role))
    answers = []
    for user, resource, resource_id, action, scopes in requests:
        groups = tuple(g for g, users in model.members.items() if user in users)
        offered = [
            BindingGrant(role, f"b{i}", expires)
            for i, (kind, name, role, expires) in enumerate(model.bindings)
            if (kind == "user" and name == user) or (kind == "group" and name in groups)
        ]
        access = compile_access(offered, catalog, now=NOW, default_role=model.default_role)
        principal = Principal(user, tenant.id, PrincipalKind.USER, user, NOW)
        subject = Subject(principal, tenant_model, groups, access)
        request = AuthzRequest(resource, action, AuthzContext(time=NOW), resource_id)
        decision = authorizer.authorize(subject, request, scopes=scopes)
        assert decision.reasons
        answers.append(decision.allowed)
    return answers


def cedar_decisions(model: Model, requests: list[Any]) -> list[bool]:
    policy_set = cedarpy.PolicySet.from_str(cedar_model.policies(model))
    answers = []
    for user, resource, resource_id, action, scopes in requests:
        result = cedarpy.is_authorized(
            cedar_model.request(user, resource, resource_id, action, scopes),
            policy_set,
            cedar_model.entities(model, user, resource, resource_id, scopes),
        )
        assert not result.diagnostics.errors, result.diagnostics.errors
        answers.append(result.allowed)
    return answers


@settings(max_examples=500, deadline=None)
@given(model=models(), requests=REQUESTS)
def test_bastion_rbac_agrees_with_cedar(model: Model, requests: list[Any]) -> None:
    assert bastion_decisions(model, requests) == cedar_decisions(model, requests)
