"""Agent registration tokens: single use (also concurrently, across processes), capabilities
become scopes, the second use is refused and audited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bastion.backends.memory import MemoryStorage
from bastion.core.model import AuditQuery, PrincipalKind, SubjectType
from bastion.errors import AuthenticationError, ConflictError, NotFoundError, RequestRejectedError
from bastion.services.agents import capability_scopes
from tests.identity.conftest import ACTOR, FrozenClock, World, make_world

CLIENT = {"ip": "10.1.1.1", "userAgent": "agent/1.0", "via": "test"}


def create(world: World, **kw: object) -> str:
    options: dict[str, object] = {
        "capabilities": ["classification", "analysis"],
        "roles": ["operator"],
        "ttl": None,
    }
    _, secret = world.identity.agents.create_token(
        tenant_name="default", actor=ACTOR, **(options | kw)
    )
    return secret


def register(world: World, secret: str, name: str | None = None) -> object:
    return world.identity.agents.register(
        secret,
        name=name,
        display_name="",
        client=CLIENT,
        audit_tenant="default",
        authz=world.services.authz.authorizer.settings,
    )


def test_capabilities_become_scopes() -> None:
    assert capability_scopes(["classification", " analysis ", "patterns:read"]) == (
        "classification:*",
        "analysis:*",
        "patterns:read",
    )
    with pytest.raises(RequestRejectedError):
        capability_scopes(["bad:scope:x"])


def test_registration_creates_an_agent_with_roles_and_a_scoped_key(world: World) -> None:
    secret = create(world)
    assert secret.startswith("bat_")
    done = register(world, secret, name="Classifier-1")
    assert done.agent.name == "classifier-1" and done.agent.kind is PrincipalKind.AGENT  # type: ignore[attr-defined]
    assert done.key.key.scopes == ("classification:*", "analysis:*")  # type: ignore[attr-defined]
    with world.services.storage.transaction() as tx:
        authenticated = world.services.api_keys.verify(tx, done.key.secret)  # type: ignore[attr-defined]
        bindings = tx.bindings.for_subject(world.tenant.id, SubjectType.AGENT, "classifier-1")
    assert [b.role for b in bindings] == ["operator"]
    assert authenticated.principal.name == "classifier-1"


def test_second_use_fails_and_is_audited(world: World) -> None:
    secret = create(world)
    register(world, secret)
    with pytest.raises(AuthenticationError) as caught:
        register(world, secret)
    assert caught.value.reason == "registration_token_already_used"
    with world.services.storage.transaction() as tx:
        failures = tx.audit.query(AuditQuery(action="agent.register", outcome="failure", limit=5))
    assert [e.details["reason"] for e in failures] == ["registration_token_already_used"]
    assert secret not in repr(failures)


def test_expired_revoked_and_malformed_tokens_fail(world: World) -> None:
    expired = create(world, ttl=timedelta(minutes=5))
    world.clock.advance(minutes=6)
    with pytest.raises(AuthenticationError) as caught:
        register(world, expired)
    assert caught.value.reason == "expired_registration_token"
    revoked = create(world)
    [token] = [
        t
        for t in world.identity.agents.list_tokens(tenant_name="default")
        if t.used_at is None and t.expires_at > world.clock.now()
    ]
    world.identity.agents.revoke_token(tenant_name="default", token_id=token.id, actor=ACTOR)
    with pytest.raises(AuthenticationError) as caught:
        register(world, revoked)
    assert caught.value.reason == "revoked_registration_token"
    with pytest.raises(AuthenticationError) as caught:
        register(world, "bat_short")
    assert caught.value.reason == "malformed_registration_token"


def _revocations(world: World) -> int:
    with world.services.storage.transaction() as tx:
        return len(tx.audit.query(AuditQuery(action="agent.token.revoke", limit=100)))


def test_revoking_a_token_once_is_audited_once_and_a_used_one_is_refused(world: World) -> None:
    create(world)
    used = create(world)
    register(world, used, name="classifier-1")
    tokens = world.identity.agents.list_tokens(tenant_name="default")
    [unused] = [t for t in tokens if t.used_at is None]
    [spent] = [t for t in tokens if t.used_at is not None]
    first = world.identity.agents.revoke_token(
        tenant_name="default", token_id=unused.id, actor=ACTOR
    )
    world.clock.advance(minutes=1)
    again = world.identity.agents.revoke_token(
        tenant_name="default", token_id=unused.id, actor=ACTOR
    )
    assert again.revoked_at == first.revoked_at
    assert _revocations(world) == 1
    with pytest.raises(ConflictError, match="already used; disable or delete the agent"):
        world.identity.agents.revoke_token(tenant_name="default", token_id=spent.id, actor=ACTOR)
    with pytest.raises(NotFoundError) as missing:
        world.identity.agents.revoke_token(tenant_name="default", token_id="rtk_nope", actor=ACTOR)
    assert str(missing.value) == "no registration token 'rtk_nope' in tenant 'default'"
    assert _revocations(world) == 1


def test_unknown_role_is_refused(world: World) -> None:
    with pytest.raises(RequestRejectedError):
        create(world, roles=["no-such-role"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/b.db"
    else:
        yield request.getfixturevalue("clean_postgres_url")


def test_registration_token_used_twice_concurrently_registers_one_agent(shared_url: str) -> None:
    world = make_world(shared_url)
    secret = create(world)
    replicas = [make_world(shared_url, clock=world.clock) for _ in range(4)]
    start = threading.Barrier(len(replicas))
    outcomes: list[str] = []

    def use(replica: World, n: int) -> None:
        start.wait()
        try:
            register(replica, secret, name=f"racer-{n}")
            outcomes.append("registered")
        except AuthenticationError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=use, args=(r, n)) for n, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["registered"] + ["registration_token_already_used"] * 3
    agents = world.identity.directory.list(tenant_name="default", kind=PrincipalKind.AGENT)
    assert len(agents) == 1
    for replica in (world, *replicas):
        replica.services.identity.close()
        replica.services.storage.close()


RESERVING = """  rbac:
    bindings:
      - {subject: {type: agent, name: deployer}, role: admin}
      - {subject: {type: agent, name: elsewhere}, role: admin, tenant: acme}
      - {subject: {type: user, name: builder}, role: admin}
    platformBindings:
      - {subject: {type: agent, name: crawler}, role: viewer, targetTenants: ["*"]}
"""


@pytest.fixture
def reserving(clock: FrozenClock) -> Iterator[World]:
    built = make_world("sqlite:///unused.db", clock=clock, storage=MemoryStorage(), extra=RESERVING)
    yield built
    built.services.identity.close()


def _failures(world: World) -> list[dict[str, object]]:
    with world.services.storage.transaction() as tx:
        found = tx.audit.query(AuditQuery(action="agent.register", outcome="failure", limit=5))
    return [dict(e.details) for e in found]


def test_registration_cannot_claim_a_name_a_configured_binding_grants(reserving: World) -> None:
    secret = create(reserving, roles=["viewer"])
    with pytest.raises(ConflictError) as caught:
        register(reserving, secret, name="  Deployer ")
    assert str(caught.value) == (
        "the name deployer is reserved by a binding in bastion.yaml; choose another"
    )
    assert _failures(reserving) == [
        {
            "reason": "name_reserved_by_configured_binding",
            "name": "deployer",
            "reservedBy": "security.rbac.bindings[0]",
        }
    ]
    with reserving.services.storage.transaction() as tx:
        names = [p.name for p in tx.principals.list(reserving.tenant.id)]
    assert "deployer" not in names
    # The token is not used up: its holder registers under another name, with its own roles.
    [token] = reserving.identity.agents.list_tokens(tenant_name="default")
    assert token.used_at is None
    done = register(reserving, secret, name="deployer-2")
    assert done.roles == ("viewer",)  # type: ignore[attr-defined]


def test_registration_cannot_claim_a_name_a_platform_binding_takes_to_other_tenants(
    reserving: World,
) -> None:
    secret = create(reserving)
    with pytest.raises(ConflictError):
        register(reserving, secret, name="crawler")
    assert _failures(reserving)[0]["reservedBy"] == "security.rbac.platformBindings[0]"


def test_only_agent_bindings_of_the_tokens_tenant_reserve_a_name(reserving: World) -> None:
    # "elsewhere" is bound in another tenant, "builder" as a user: neither reaches this agent.
    for name in ("elsewhere", "builder"):
        done = register(reserving, create(reserving), name=name)
        assert done.agent.name == name  # type: ignore[attr-defined]
    assert _failures(reserving) == []


def test_a_refused_token_learns_nothing_about_reserved_names(reserving: World) -> None:
    expired = create(reserving, ttl=timedelta(minutes=5))
    reserving.clock.advance(minutes=6)
    with pytest.raises(AuthenticationError) as caught:
        register(reserving, expired, name="deployer")
    assert caught.value.reason == "expired_registration_token"
