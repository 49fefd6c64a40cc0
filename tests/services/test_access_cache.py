"""Remembered callers (`AccessService.check_cached`): served without a unit of work only while
nothing they depend on has moved — a revocation or a model change made by another process
(which only the stored counters tell), an expired key or binding."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bastion.core.model import Principal, PrincipalKind, RoleBinding, SubjectType
from bastion.core.routes import PathSet
from bastion.crypto.keys import KeyedHasher, new_api_key
from bastion.errors import AuthenticationError, AuthorizationError, StorageError
from bastion.services.access import AccessService, RequestFacts
from bastion.services.apikeys import ApiKeyService
from bastion.services.authn import Authenticator
from bastion.services.authz import Authorizer
from bastion.services.groups import GroupService
from bastion.services.revocation import NullBroadcast, RevocationState, Revoker
from tests.services.conftest import ACTOR, FrozenClock, World

PEPPER = KeyedHasher(b"p" * 32)


@pytest.fixture
def served(clock: FrozenClock, world: World) -> World:
    """The conftest world, with an access service that remembers callers (as wired in serve)."""
    state = RevocationState()
    api_keys = ApiKeyService(
        storage=world.storage, hasher=PEPPER, clock=clock, revoker=Revoker(state, NullBroadcast())
    )
    access = AccessService(
        storage=world.storage,
        authenticator=Authenticator([api_keys]),
        authorizer=Authorizer(),
        routes=world.access._routes,
        public_paths=PathSet(["/health"]),
        clock=clock,
        revocation=state,
    )
    return World(clock, world.storage, api_keys, access, world.boot)


def facts(credential: str | None, path: str = "/api/patterns", method: str = "GET") -> RequestFacts:
    return RequestFacts(method, path, credential, "127.0.0.1", "pytest", "req_1")


def other_process(world: World) -> ApiKeyService:
    """The CLI on the same database: its own revocation state, no broadcast."""
    return ApiKeyService(storage=world.storage, hasher=PEPPER, clock=world.clock)


def test_remembered_caller_is_decided_without_a_unit_of_work(served: World) -> None:
    secret = served.boot.admin_key.secret
    assert served.access.check_cached(facts(secret)) is None  # never seen: needs a look-up
    assert served.access.check(facts(secret)).allowed

    def no_database() -> None:
        raise StorageError("no unit of work may be opened")

    served.storage.transaction = no_database  # type: ignore[assignment,method-assign]
    cached = served.access.check_cached(facts(secret))
    assert cached is not None and cached.allowed
    assert cached.identity is not None and cached.identity.principal.name == "admin@example.com"


def test_remembered_caller_is_still_authorized_per_request(served: World) -> None:
    limited = served.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="limited",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    assert served.access.check(facts(limited.secret)).allowed
    denied = served.access.check_cached(facts(limited.secret, "/api/patterns/x/execute", "POST"))
    assert denied is not None and isinstance(denied.error, AuthorizationError)
    assert "credential scopes do not include executions:create" in denied.reasons


def test_revocation_by_another_process_is_seen_on_the_next_request(served: World) -> None:
    secret = served.boot.admin_key.secret
    assert served.access.check(facts(secret)).allowed
    other_process(served).revoke(
        tenant_name="default", reference=served.boot.admin_key.key.id, actor=ACTOR
    )
    assert served.access.check_cached(facts(secret)) is None
    verdict = served.access.check(facts(secret))
    assert isinstance(verdict.error, AuthenticationError)
    assert verdict.error.reason == "revoked_key"


def test_binding_removed_by_another_process_is_seen_on_the_next_request(served: World) -> None:
    secret = served.boot.admin_key.secret
    assert served.access.check(facts(secret)).allowed
    with served.storage.transaction() as tx:
        tenant = tx.tenants.get_by_name("default")
        for binding in tx.bindings.list(tenant.id):
            tx.bindings.delete(tenant.id, binding.id)
    assert served.access.check_cached(facts(secret)) is None
    assert isinstance(served.access.check(facts(secret)).error, AuthorizationError)


def test_expired_key_is_never_served_from_memory(served: World) -> None:
    expiring = served.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="short",
        scopes=["patterns:read"],
        expires_at=served.clock.now() + timedelta(seconds=10),
        actor=ACTOR,
    )
    assert served.access.check(facts(expiring.secret)).allowed
    served.clock.advance(seconds=9)
    assert served.access.check_cached(facts(expiring.secret)) is not None
    served.clock.advance(seconds=2)
    assert served.access.check_cached(facts(expiring.secret)) is None
    verdict = served.access.check(facts(expiring.secret))
    assert isinstance(verdict.error, AuthenticationError)
    assert verdict.error.reason == "expired_key"


def test_binding_expiry_ends_the_remembered_caller(served: World) -> None:
    with served.storage.transaction() as tx:
        tenant = tx.tenants.get_by_name("default")
        tx.principals.create(
            Principal(
                id="prn_temp",
                tenant_id=tenant.id,
                kind=PrincipalKind.SERVICE_ACCOUNT,
                name="temp-bot",
                created_at=served.clock.now(),
            )
        )
        tx.bindings.create(
            RoleBinding(
                id="bind_temp",
                tenant_id=tenant.id,
                role="viewer",
                subject_type=SubjectType.SERVICE_ACCOUNT,
                subject_name="temp-bot",
                created_at=served.clock.now(),
                expires_at=served.clock.now() + timedelta(seconds=5),
            )
        )
    issued = served.api_keys.create(
        tenant_name="default",
        owner_name="temp-bot",
        name="temp",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    assert served.access.check(facts(issued.secret)).allowed
    assert served.access.check_cached(facts(issued.secret)) is not None
    served.clock.advance(seconds=6)
    assert served.access.check_cached(facts(issued.secret)) is None
    assert isinstance(served.access.check(facts(issued.secret)).error, AuthorizationError)


def test_group_membership_changes_move_the_authorization_version(served: World) -> None:
    groups = GroupService(storage=served.storage, clock=served.clock)
    groups.create(tenant_name="default", name="ops", display_name="Ops", actor=ACTOR)
    counters = served.storage.change_counters
    before = counters().authz_version
    groups.add_member(tenant_name="default", name="ops", member="admin@example.com", actor=ACTOR)
    assert counters().authz_version == before + 1
    groups.remove_member(tenant_name="default", name="ops", member="admin@example.com", actor=ACTOR)
    assert counters().authz_version == before + 2


def test_without_local_counters_every_credential_goes_to_check(served: World) -> None:
    secret = served.boot.admin_key.secret
    assert served.access.check(facts(secret)).allowed
    served.storage.change_counters = lambda: None  # type: ignore[assignment,method-assign,return-value]
    assert served.access.check_cached(facts(secret)) is None
    assert served.access.check(facts(secret)).allowed


def test_without_local_counters_fresh_broadcasts_stand_in(served: World) -> None:
    """PostgreSQL: no local counters; while both broadcasts are subscribed and their database
    backstops current, the process's own view decides, and an announced revocation voids it."""
    secret = served.boot.admin_key.secret
    served.storage.change_counters = lambda: None  # type: ignore[assignment,method-assign,return-value]
    state = served.access._revocation
    authorizer = served.access._authorizer
    assert state is not None
    state.listening(True)
    authorizer.broadcast_health(True)
    assert served.access.check(facts(secret)).allowed  # reads both from the database
    assert served.access.check_cached(facts(secret)) is None  # filed only once both are fresh
    assert served.access.check(facts(secret)).allowed
    cached = served.access.check_cached(facts(secret))
    assert cached is not None and cached.allowed
    state.observe(state.epoch + 1)  # another replica announced a revocation
    assert served.access.check_cached(facts(secret)) is None
    assert served.access.check(facts(secret)).allowed
    assert served.access.check_cached(facts(secret)) is not None
    authorizer.invalidate()  # another replica announced a model change
    assert served.access.check_cached(facts(secret)) is None
    assert served.access.check(facts(secret)).allowed
    state.listening(False)  # the subscription is lost: back to the database on every request
    assert served.access.check_cached(facts(secret)) is None


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        (None, "missing_credential"),
        ("bk_live_short", "malformed_key"),
        ("checksum", "malformed_key"),
        ("Basic dXNlcjpwYXNz", "malformed_credential"),
        ("eyJhbGciOiJub25lIn0.e30.", "malformed_credential"),  # no token verifier configured
    ],
)
def test_credential_that_cannot_be_valid_is_refused_without_a_unit_of_work(
    served: World, credential: str | None, reason: str
) -> None:
    """A flood of garbage credentials must not take a thread, a connection or the write lock."""
    if credential == "checksum":
        secret = served.boot.admin_key.secret
        credential = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    def no_database() -> None:
        raise AssertionError("a unit of work was opened for a credential that cannot be valid")

    served.storage.transaction = no_database  # type: ignore[assignment,method-assign]
    cached = served.access.check_cached(facts(credential))
    assert cached is not None and not cached.allowed
    assert isinstance(cached.error, AuthenticationError) and cached.error.reason == reason
    checked = served.access.check(facts(credential))  # the slow path screens first as well
    assert isinstance(checked.error, AuthenticationError) and checked.error.reason == reason


def test_keys_are_identified_in_read_only_units_of_work(served: World) -> None:
    """A well-formed key no one holds (anyone can compute the checksum) is refused after a
    read-only look-up: it never opens a write unit of work. A key that exists, revoked or
    not, is decided on reads too, with the same reasons as before; the one write is its
    last-used time, in a unit of its own."""
    known = served.boot.admin_key.secret
    write_units = 0
    original = served.storage.transaction

    def counting():  # type: ignore[no-untyped-def]
        nonlocal write_units
        write_units += 1
        return original()

    served.storage.transaction = counting  # type: ignore[method-assign]
    made_up = facts(new_api_key())
    assert served.access.check_cached(made_up) is None  # well formed: needs the look-up
    refused = served.access.check(made_up)
    assert isinstance(refused.error, AuthenticationError) and refused.error.reason == "unknown_key"
    assert write_units == 0
    assert served.access.check(facts(known)).allowed
    assert write_units == 1  # the last-used time
    other_process(served).revoke(tenant_name="default", reference="bootstrap-admin", actor=ACTOR)
    revoked = served.access.check(facts(known))
    assert isinstance(revoked.error, AuthenticationError) and revoked.error.reason == "revoked_key"


def test_counters_are_read_once_per_loop_iteration_and_a_change_is_seen_on_the_next(
    served: World,
) -> None:
    """On the event loop the counters are read at most once per iteration: every request
    decided in it arrived before that read. A revocation committed by another process before
    the next iteration is seen there (the next request)."""
    secret = served.boot.admin_key.secret
    assert served.access.check(facts(secret)).allowed
    reads: list[object] = []
    read = served.storage.change_counters

    def counting() -> object:
        reads.append(None)
        return read()

    served.storage.change_counters = counting  # type: ignore[assignment,method-assign]

    async def requests() -> None:
        for _ in range(5):  # five requests decided in one iteration: one read
            verdict = served.access.check_cached(facts(secret))
            assert verdict is not None and verdict.allowed
        assert len(reads) == 1
        other_process(served).revoke(
            tenant_name="default", reference=served.boot.admin_key.key.id, actor=ACTOR
        )
        await asyncio.sleep(0)  # the next iteration: the next request
        assert served.access.check_cached(facts(secret)) is None
        assert len(reads) == 2

    asyncio.run(requests())
    assert served.access.check_cached(facts(secret)) is None  # outside a loop: read every time
