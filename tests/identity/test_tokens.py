"""Tokens bastion issues: client credentials, refresh rotation and reuse detection (also
concurrent, on SQLite and PostgreSQL), token exchange, signing keys sealed and rotated."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from bastion.core.model import AuditQuery, Principal, PrincipalKind, Tenant
from bastion.errors import AuthenticationError, AuthorizationError
from bastion.services.authn import Authenticated
from bastion.services.exchange import ACCESS_TOKEN_TYPE
from bastion.services.tokens import IssuedTokens
from bastion.wiring import Services
from tests.identity.conftest import ACTOR, World, make_world


def session_for(services: Services, principal: Principal, tenant: Tenant) -> IssuedTokens:
    """A session for ``principal``, as a login that checked its password starts one."""
    services.identity.tokens.warm()
    with services.storage.transaction() as tx:
        issued: IssuedTokens = services.identity.tokens.start_session(tx, principal, tenant)
    return issued


def login_tokens(world: World, name: str = "admin@example.com") -> dict[str, object]:
    with world.services.storage.transaction() as tx:
        principal = tx.principals.get_by_name(world.tenant.id, name)
    return session_for(world.services, principal, world.tenant).response()


def whois(world: World, token: str) -> Authenticated:
    with world.services.storage.transaction() as tx:
        return world.identity.verifiers[0].verify(tx, token)


def test_refresh_rotates_and_the_old_token_is_single_use(world: World) -> None:
    first = login_tokens(world)
    second = world.identity.tokens.refresh(str(first["refresh_token"]), scope=None).response()
    assert second["refresh_token"] != first["refresh_token"]
    assert whois(world, str(second["access_token"])).principal.name == "admin@example.com"
    with pytest.raises(AuthenticationError) as caught:
        world.identity.tokens.refresh(str(first["refresh_token"]), scope=None)
    assert caught.value.reason == "refresh_token_reuse"
    # The whole family is gone: the successor, and access tokens of the family.
    with pytest.raises(AuthenticationError):
        world.identity.tokens.refresh(str(second["refresh_token"]), scope=None)
    with pytest.raises(AuthenticationError) as revoked:
        whois(world, str(second["access_token"]))
    assert revoked.value.reason == "revoked_token"
    with world.services.storage.transaction() as tx:
        [reuse] = [
            e
            for e in tx.audit.query(AuditQuery(action="token.refresh", outcome="failure", limit=10))
            if e.details.get("reason") == "refresh_token_reuse"
        ]
    assert reuse.details["familyRevoked"] is True


def test_refresh_token_expires(world: World) -> None:
    first = login_tokens(world)
    world.clock.advance(days=7, seconds=1)
    with pytest.raises(AuthenticationError) as caught:
        world.identity.tokens.refresh(str(first["refresh_token"]), scope=None)
    assert caught.value.reason == "expired_refresh_token"


def test_a_used_token_is_still_caught_as_reuse_for_a_refresh_lifetime_after_it_expired(
    world: World,
) -> None:
    """Someone else used alice's token and rotates on; alice comes back nine days later
    (her copy expired after seven) while the thief's rotation keeps the table trimmed. Her
    stale token is still known, so presenting it revokes the thief's family."""
    stolen = str(login_tokens(world)["refresh_token"])
    thief = world.identity.tokens.refresh(stolen, scope=None).refresh_token
    for _ in range(9):
        world.clock.advance(days=1)
        thief = world.identity.tokens.refresh(thief, scope=None).refresh_token
        login_tokens(world)  # other sessions come and go, each issue trims expired tokens
    with pytest.raises(AuthenticationError) as caught:
        world.identity.tokens.refresh(stolen, scope=None)
    assert caught.value.reason == "refresh_token_reuse"
    with pytest.raises(AuthenticationError) as caught:
        world.identity.tokens.refresh(thief, scope=None)
    assert caught.value.reason == "revoked_refresh_token"


def test_rotating_sessions_leave_only_tokens_expired_less_than_a_lifetime_ago(
    world: World,
) -> None:
    """Every refresh stores a new token. Those expired for longer than a refresh lifetime
    (7 days) are removed as new ones are issued, so four weeks of hourly rotation by two
    sessions (within their 30-day session lifetime) keep about two weeks' worth, not all."""
    issued: list[tuple[int, str]] = []  # (hour issued, token)
    sessions = [str(login_tokens(world)["refresh_token"]) for _ in range(2)]
    hours = 29 * 24
    for hour in range(1, hours + 1):
        world.clock.advance(hours=1)
        sessions = [world.identity.tokens.refresh(t, scope=None).refresh_token for t in sessions]
        issued += [(hour, token) for token in sessions]

    def reason(token: str) -> str:
        with pytest.raises(AuthenticationError) as caught:
            world.identity.tokens.refresh(token, scope=None)
        return str(caught.value.reason)

    # Expired more than 7 days ago (issued more than 14 days ago): gone, so unknown.
    old = [token for hour, token in issued if hour < hours - 14 * 24]
    assert {reason(token) for token in old} == {"unknown_refresh_token"}
    # Expired 3 days ago (issued 10 days ago): still known, so presenting it is reuse.
    assert reason(issued[2 * (hours - 10 * 24)][1]) == "refresh_token_reuse"


def test_refresh_can_only_narrow_scope(world: World) -> None:
    first = login_tokens(world)
    narrowed = world.identity.tokens.refresh(str(first["refresh_token"]), scope="patterns:read")
    assert narrowed.scope == ("patterns:read",)
    with pytest.raises(AuthorizationError):
        world.identity.tokens.refresh(str(narrowed.refresh_token), scope="admin")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/b.db"
    else:
        url = request.getfixturevalue("clean_postgres_url")
    world = make_world(url)
    yield world
    world.services.identity.close()
    world.services.storage.close()


def test_two_concurrent_refreshes_one_wins_and_the_family_is_revoked(shared_world: World) -> None:
    world = shared_world
    first = login_tokens(world)
    replicas = [make_world(world.services.config.storage.url, clock=world.clock) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[object] = []

    def refresh(replica: World) -> None:
        start.wait()
        try:
            results.append(replica.identity.tokens.refresh(str(first["refresh_token"]), scope=None))
        except AuthenticationError as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=refresh, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if not isinstance(r, str)]
    assert len(winners) == 1
    assert [r for r in results if isinstance(r, str)] == ["refresh_token_reuse"]
    with pytest.raises(AuthenticationError):
        world.identity.tokens.refresh(str(winners[0].refresh_token), scope=None)  # type: ignore[attr-defined]
    for replica in replicas:
        replica.services.identity.close()
        replica.services.storage.close()


def service_account(
    world: World, scopes: list[str], *, expires_at: datetime | None = None
) -> tuple[str, str]:
    account = world.principal("ci-bot", PrincipalKind.SERVICE_ACCOUNT)
    key = world.services.api_keys.create(
        tenant_name="default",
        owner_name="ci-bot",
        name="ci-secret",
        scopes=scopes,
        expires_at=expires_at,
        actor=ACTOR,
    )
    return account.id, key.secret


def exchanged(
    world: World,
    subject_token: str,
    *,
    client: Authenticated | None = None,
    actor_token: str | None = None,
) -> IssuedTokens:
    """A delegated token for ``subject_token``, the actor being ``client`` or ``actor_token``."""
    return world.identity.exchange.exchange(
        subject_token=subject_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        client=client,
        actor_token=actor_token,
        actor_token_type=None if actor_token is None else ACCESS_TOKEN_TYPE,
        scope=None,
    )


def test_client_credentials_issues_a_scoped_token_without_refresh(world: World) -> None:
    _, secret = service_account(world, ["patterns:read", "executions:create"])
    with world.services.storage.transaction() as tx:
        client = world.services.api_keys.verify(tx, secret)
    issued = world.identity.tokens.client_credentials(client, scope="patterns:read")
    assert issued.refresh_token is None and issued.scope == ("patterns:read",)
    assert whois(world, issued.access_token).principal.name == "ci-bot"
    with pytest.raises(AuthorizationError):
        world.identity.tokens.client_credentials(client, scope="admin")


def test_users_cannot_use_client_credentials(world: World) -> None:
    with world.services.storage.transaction() as tx:
        admin = world.services.api_keys.verify(tx, world.boot.admin_key.secret)
    with pytest.raises(AuthenticationError):
        world.identity.tokens.client_credentials(admin, scope=None)


def test_token_exchange_carries_both_identities_and_audits_both(world: World) -> None:
    user_token = str(login_tokens(world)["access_token"])
    _, secret = service_account(world, ["patterns:read"])
    with world.services.storage.transaction() as tx:
        agent = world.services.api_keys.verify(tx, secret)
    issued = world.identity.exchange.exchange(
        subject_token=user_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        client=agent,
        actor_token=None,
        actor_token_type=None,
        scope=None,
    )
    delegated = whois(world, issued.access_token)
    assert delegated.principal.name == "admin@example.com"
    assert delegated.actor is not None and delegated.actor.principal.name == "ci-bot"
    assert delegated.actor.scopes == ("patterns:read",)
    with world.services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="token.exchange", limit=5))
    assert event.actor["id"] == "ci-bot"
    assert event.details["subject"]["id"] == "admin@example.com"
    with pytest.raises(AuthorizationError):  # no chains of delegation
        world.identity.exchange.exchange(
            subject_token=issued.access_token,
            subject_token_type=ACCESS_TOKEN_TYPE,
            client=agent,
            actor_token=None,
            actor_token_type=None,
            scope=None,
        )


def test_delegated_request_needs_both_principals_permission(world: World) -> None:
    user_token = str(login_tokens(world)["access_token"])  # admin: everything
    _, secret = service_account(world, ["patterns:read"])  # no role bound: nothing
    with world.services.storage.transaction() as tx:
        agent = world.services.api_keys.verify(tx, secret)
    issued = world.identity.exchange.exchange(
        subject_token=user_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        client=agent,
        actor_token=None,
        actor_token_type=None,
        scope=None,
    )
    access = world.services.access
    admin_caller = access.identify(user_token)
    assert access.authorize(admin_caller, "patterns:read").allowed
    delegated = access.identify(issued.access_token)
    assert delegated.identity.acting is not None
    assert not access.authorize(delegated, "patterns:read").allowed
    with world.services.storage.transaction() as tx:
        from bastion.core.model import RoleBinding, SubjectType

        tx.bindings.create(
            RoleBinding(
                "bnd-ci",
                world.tenant.id,
                SubjectType.SERVICE_ACCOUNT,
                "ci-bot",
                "developer",
                world.clock.now(),
            )
        )
    world.services.authorizer.invalidate()
    delegated = access.identify(issued.access_token)
    assert access.authorize(delegated, "patterns:read").allowed
    assert not access.authorize(delegated, "patterns:create").allowed  # actor scope: read only


def test_private_signing_keys_are_sealed_at_rest(world: World) -> None:
    world.identity.tokens.warm()
    with world.services.storage.transaction() as tx:
        [key] = tx.signing_keys.list()
    assert b"PRIVATE KEY" not in key.sealed_private
    assert key.algorithm == "RS256"


def test_rotation_keeps_the_old_key_published_until_its_last_token_expires(world: World) -> None:
    keys = world.identity.signing_keys
    old_token = str(login_tokens(world)["access_token"])
    old_kid = keys.jwks()["keys"][0]["kid"]
    new = keys.rotate(algorithm="ES256", actor=ACTOR)
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old_kid, new.kid}
    assert whois(world, old_token).principal.name == "admin@example.com"
    new_token = str(login_tokens(world)["access_token"])
    assert whois(world, new_token).principal.name == "admin@example.com"
    world.clock.advance(minutes=15, seconds=91)
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid]


def test_eddsa_signing_key(world: World) -> None:
    world.identity.signing_keys.rotate(algorithm="EdDSA", actor=ACTOR)
    token = str(login_tokens(world)["access_token"])
    assert whois(world, token).principal.name == "admin@example.com"


def test_access_token_lifetime_is_fifteen_minutes(world: World) -> None:
    issued = login_tokens(world)
    assert issued["expires_in"] == int(timedelta(minutes=15).total_seconds())
