"""Tenants, users, service accounts, agents and groups: canonical names, CRUD, audit, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bastion.core.model import AuditQuery, PrincipalKind
from bastion.errors import AuthenticationError, ConflictError, NotFoundError, RequestRejectedError
from tests.identity.conftest import ACTOR, World


def test_look_alike_spellings_cannot_create_a_second_account(world: World) -> None:
    world.user("alice@example.com")
    for twin in ("ALICE@EXAMPLE.COM", "\uff41lice@example.com", " Alice@Example.com "):
        with pytest.raises(ConflictError):
            world.user(twin)
    principal, _ = world.identity.directory.show(
        tenant_name="DEFAULT",
        kind=PrincipalKind.USER,
        name="\uff21\uff4c\uff49\uff43\uff45@example.com",
    )
    assert principal.name == "alice@example.com"


def test_names_with_control_characters_or_slashes_are_refused(world: World) -> None:
    for bad in ("a\nb", "a/b", "", "x" * 300):
        with pytest.raises(RequestRejectedError):
            world.principal(bad, PrincipalKind.SERVICE_ACCOUNT)


def test_principal_kinds_are_separate_namespaces_for_lookup(world: World) -> None:
    world.principal("ci-bot", PrincipalKind.SERVICE_ACCOUNT)
    with pytest.raises(NotFoundError):
        world.identity.directory.show(
            tenant_name="default", kind=PrincipalKind.AGENT, name="ci-bot"
        )
    listed = world.identity.directory.list(
        tenant_name="default", kind=PrincipalKind.SERVICE_ACCOUNT
    )
    assert [(p.name, groups) for p, groups in listed] == [("ci-bot", [])]


def test_every_change_is_audited_with_the_change(world: World) -> None:
    directory = world.identity.directory
    world.principal("svc", PrincipalKind.SERVICE_ACCOUNT)
    directory.update(
        tenant_name="default",
        kind=PrincipalKind.SERVICE_ACCOUNT,
        name="svc",
        display_name="Service",
        actor=ACTOR,
    )
    directory.update(
        tenant_name="default",
        kind=PrincipalKind.SERVICE_ACCOUNT,
        name="svc",
        disabled=True,
        actor=ACTOR,
    )
    directory.update(
        tenant_name="default",
        kind=PrincipalKind.SERVICE_ACCOUNT,
        name="svc",
        disabled=False,
        actor=ACTOR,
    )
    directory.delete(
        tenant_name="default", kind=PrincipalKind.SERVICE_ACCOUNT, name="svc", actor=ACTOR
    )
    with world.services.storage.transaction() as tx:
        actions = [
            e.action for e in tx.audit.query(AuditQuery(resource="serviceaccount/svc", limit=50))
        ]
    assert actions == [
        "serviceaccount.create",
        "serviceaccount.update",
        "serviceaccount.disable",
        "serviceaccount.enable",
        "serviceaccount.delete",
    ]


def test_disabling_a_user_stops_its_cached_key_on_the_next_request(world: World) -> None:
    secret = world.boot.admin_key.secret
    with world.services.storage.transaction() as tx:
        assert world.services.api_keys.verify(tx, secret).principal.name == "admin@example.com"
    world.identity.directory.update(
        tenant_name="default",
        kind=PrincipalKind.USER,
        name="admin@example.com",
        disabled=True,
        actor=ACTOR,
    )
    with pytest.raises(AuthenticationError) as caught, world.services.storage.transaction() as tx:
        world.services.api_keys.verify(tx, secret)
    assert caught.value.reason == "disabled_principal"


def test_disabling_a_tenant_stops_its_keys(world: World) -> None:
    secret = world.boot.admin_key.secret
    with world.services.storage.transaction() as tx:
        world.services.api_keys.verify(tx, secret)
    world.identity.directory.update_tenant("default", disabled=True, actor=ACTOR)
    with pytest.raises(AuthenticationError) as caught, world.services.storage.transaction() as tx:
        world.services.api_keys.verify(tx, secret)
    assert caught.value.reason == "disabled_tenant"


def test_deleting_a_user_removes_its_credentials_and_memberships(world: World) -> None:
    user = world.user("bob@example.com")
    groups = world.identity.groups
    groups.create(tenant_name="default", name="ops", actor=ACTOR)
    groups.add_member(tenant_name="default", name="ops", member="bob@example.com", actor=ACTOR)
    world.services.api_keys.create(
        tenant_name="default",
        owner_name="bob@example.com",
        name="bob-key",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    world.identity.directory.delete(
        tenant_name="default", kind=PrincipalKind.USER, name="bob@example.com", actor=ACTOR
    )
    with world.services.storage.transaction() as tx:
        assert tx.passwords.get(world.tenant.id, user.id) is None
        assert [k.name for k in tx.api_keys.page(world.tenant.id, after=None, limit=None)] == [
            "bootstrap-admin"
        ]
    assert groups.show(tenant_name="default", name="ops").members == ()


def test_tenant_create_disable_and_delete_only_when_empty(world: World) -> None:
    directory = world.identity.directory
    directory.create_tenant(name="Acme", display_name="ACME Corp", actor=ACTOR)
    with pytest.raises(ConflictError):
        directory.create_tenant(name="ACME", display_name="", actor=ACTOR)
    directory.create(tenant_name="acme", kind=PrincipalKind.USER, name="a@acme.test", actor=ACTOR)
    view = directory.update_tenant("acme", disabled=True, actor=ACTOR)
    assert view.state.disabled and view.state.display_name == "ACME Corp"
    with pytest.raises(ConflictError):
        directory.delete_tenant("acme", actor=ACTOR)
    directory.delete(tenant_name="acme", kind=PrincipalKind.USER, name="a@acme.test", actor=ACTOR)
    directory.delete_tenant("acme", actor=ACTOR)
    assert [v.tenant.name for v in directory.list_tenants()] == ["default"]


@pytest.mark.parametrize("backend", ["world", "sql_world"])
def test_a_tenant_goes_with_its_roles_rules_and_spent_tokens_but_not_a_live_token(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Once its principals and groups are gone, a tenant is deleted with what only configured
    it; a registration token that could still register an agent keeps it."""
    world: World = request.getfixturevalue(backend)
    directory, agents = world.identity.directory, world.identity.agents
    admin = world.services.authz.admin
    directory.create_tenant(name="acme", display_name="", actor=ACTOR)
    admin.save_role(
        tenant_name="acme",
        name="lead",
        permissions=["patterns:read"],
        inherits=[],
        actor=ACTOR,
        create=True,
    )
    admin.add_rule(
        tenant_name="acme",
        resource="patterns/x",
        allowed_users=[],
        allowed_roles=["lead"],
        actions=["read"],
        actor=ACTOR,
    )

    def token(ttl: timedelta) -> str:
        made, _ = agents.create_token(
            tenant_name="acme", capabilities=["analysis"], roles=[], ttl=ttl, actor=ACTOR
        )
        return made.id

    revoked, live = token(timedelta(hours=1)), token(timedelta(hours=2))
    token(timedelta(minutes=1))  # spent by expiry
    agents.revoke_token(tenant_name="acme", token_id=revoked, actor=ACTOR)
    world.clock.advance(minutes=5)
    with pytest.raises(ConflictError, match=f"registration token {live}, which could register"):
        directory.delete_tenant("acme", actor=ACTOR)
    agents.revoke_token(tenant_name="acme", token_id=live, actor=ACTOR)
    old = directory.show_tenant("acme").tenant.id
    directory.delete_tenant("acme", actor=ACTOR)
    assert [v.tenant.name for v in directory.list_tenants()] == ["default"]
    with world.services.storage.transaction() as tx:
        assert tx.roles.list(old) == [] and tx.resource_rules.list(old) == []
        assert tx.registration_tokens.list(old) == [] and tx.bindings.list(old) == []
        [event] = [e for e in tx.audit.query(AuditQuery(limit=1000)) if e.action == "tenant.delete"]
    assert event.details == {"deleted": {"roles": 1, "resourceRules": 1, "agentRegistrations": 3}}
    # A tenant of the same name starts with none of the old one's roles.
    directory.create_tenant(name="acme", display_name="", actor=ACTOR)
    assert "lead" not in [r.name for r in admin.list_roles("acme")]


def test_registration_tokens_are_forgotten_a_week_after_they_expire(world: World) -> None:
    agents = world.identity.agents

    def token(ttl: timedelta) -> str:
        made, _ = agents.create_token(
            tenant_name="default", capabilities=["analysis"], roles=[], ttl=ttl, actor=ACTOR
        )
        return made.id

    for hours in (1, 2):
        token(timedelta(hours=hours))
    third = token(timedelta(hours=3))
    world.clock.advance(days=7, hours=2, minutes=30)  # the first two expired over a week ago
    fourth = token(timedelta(hours=1))
    assert [t.id for t in agents.list_tokens(tenant_name="default")] == [third, fourth]


def test_group_membership_is_visible_to_the_authorizer(world: World) -> None:
    user = world.user("carol@example.com", password=None)
    groups = world.identity.groups
    groups.create(tenant_name="default", name="Developers", actor=ACTOR)
    assert groups.add_member(
        tenant_name="default", name="developers", member="CAROL@example.com", actor=ACTOR
    )
    assert not groups.add_member(
        tenant_name="default", name="developers", member="carol@example.com", actor=ACTOR
    )
    with world.services.storage.transaction() as tx:
        assert tx.groups.groups_of(world.tenant.id, user.id) == ["developers"]
    assert groups.remove_member(
        tenant_name="default", name="developers", member="carol@example.com", actor=ACTOR
    )
    with world.services.storage.transaction() as tx:
        assert tx.groups.groups_of(world.tenant.id, user.id) == []
