"""The identity stores' contract on memory, SQLite and PostgreSQL: groups, tenant state,
passwords, throttles, refresh and registration tokens, signing keys and revocations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bastion.backends.protocols import Storage, UnitOfWork
from bastion.core.credentials import (
    PasswordCredential,
    RefreshToken,
    RegistrationToken,
    RevokedToken,
    SigningKey,
    TenantState,
    ThrottleState,
)
from bastion.core.model import Group, Principal, Tenant
from bastion.errors import ConflictError, NotFoundError

from .factories import T0, Backend, make_key, make_principal, seed_tenant


def make_group(tenant: Tenant, name: str, **kw: object) -> Group:
    return Group(
        id=f"grp-{tenant.name}-{name}", tenant_id=tenant.id, name=name, created_at=T0, **kw
    )  # type: ignore[arg-type]


def seed_people(storage: Storage) -> tuple[Tenant, Tenant, Principal, Principal, Principal]:
    acme, globex = seed_tenant(storage, "acme", "globex")
    alice, bob = make_principal(acme, "alice"), make_principal(acme, "bob")
    gina = make_principal(globex, "gina")
    with storage.transaction() as tx:
        for principal in (alice, bob, gina):
            tx.principals.create(principal)
    return acme, globex, alice, bob, gina


def test_groups_of_lists_canonical_group_names_sorted(storage: Storage) -> None:
    acme, _, alice, bob, _ = seed_people(storage)
    ops, dev = make_group(acme, "ops"), make_group(acme, "dev", display_name="Developers")
    with storage.transaction() as tx:
        tx.groups.create(ops)
        tx.groups.create(dev)
        assert tx.groups.add_member(acme.id, ops.id, alice.id, at=T0)
        assert tx.groups.add_member(acme.id, dev.id, alice.id, at=T0)
        assert tx.groups.add_member(acme.id, ops.id, bob.id, at=T0)
        assert not tx.groups.add_member(acme.id, ops.id, bob.id, at=T0)
    with storage.transaction() as tx:
        assert tx.groups.groups_of(acme.id, alice.id) == ["dev", "ops"]
        assert tx.groups.groups_of(acme.id, bob.id) == ["ops"]
        assert tx.groups.members(acme.id, [ops.id]) == {ops.id: sorted([alice.id, bob.id])}
        assert tx.groups.members(acme.id, [ops.id, dev.id]) == {
            ops.id: sorted([alice.id, bob.id]),
            dev.id: [alice.id],
        }
        assert tx.groups.members(acme.id, []) == {}
        assert tx.groups.list(acme.id) == [dev, ops]
        assert tx.groups.get_by_name(acme.id, "dev") == dev
        assert tx.groups.memberships(acme.id) == {alice.id: ["dev", "ops"], bob.id: ["ops"]}
        assert tx.groups.memberships(acme.id, [bob.id]) == {bob.id: ["ops"]}
        assert tx.groups.memberships(acme.id, []) == {}


def test_group_pages_are_by_name_after_a_cursor_in_their_tenant(storage: Storage) -> None:
    acme, globex, _, _, _ = seed_people(storage)
    with storage.transaction() as tx:
        for name in ("ops", "Admins", "dev", "équipe"):
            tx.groups.create(make_group(acme, name))
        tx.groups.create(make_group(globex, "aaa"))
    with storage.transaction() as tx:
        every = [g.name for g in tx.groups.page(acme.id, after=None, limit=None)]
        assert every == ["Admins", "dev", "ops", "équipe"]  # code-point order
        assert [g.name for g in tx.groups.page(acme.id, after=None, limit=2)] == ["Admins", "dev"]
        assert [g.name for g in tx.groups.page(acme.id, after="dev", limit=2)] == ["ops", "équipe"]
        assert [g.name for g in tx.groups.page(acme.id, after="e", limit=1)] == ["ops"]
        assert tx.groups.page(acme.id, after="équipe", limit=5) == []
        # Another tenant's group is neither listed nor read as a member list.
        assert tx.groups.members(acme.id, ["grp-globex-aaa"]) == {}


def test_memberships_stay_in_their_tenant(storage: Storage) -> None:
    acme, globex, alice, _, gina = seed_people(storage)
    with storage.transaction() as tx:
        tx.groups.create(make_group(acme, "ops"))
        tx.groups.create(make_group(globex, "ops"))
        tx.groups.add_member(acme.id, "grp-acme-ops", alice.id, at=T0)
        tx.groups.add_member(globex.id, "grp-globex-ops", gina.id, at=T0)
    with storage.transaction() as tx:
        assert tx.groups.memberships(acme.id) == {alice.id: ["ops"]}
        assert tx.groups.memberships(globex.id) == {gina.id: ["ops"]}
        tx.groups.forget_principal(acme.id, alice.id)
        assert tx.groups.memberships(acme.id) == {}


def test_group_name_unique_per_tenant_and_invisible_elsewhere(storage: Storage) -> None:
    acme, globex, _, _, gina = seed_people(storage)
    with storage.transaction() as tx:
        tx.groups.create(make_group(acme, "ops"))
        tx.groups.create(make_group(globex, "ops"))
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.groups.create(replace(make_group(acme, "ops"), id="grp-other"))
    with storage.transaction() as tx:
        with pytest.raises(NotFoundError):
            tx.groups.get_by_name(globex.id, "missing")
        # A principal of another tenant cannot join.
        with pytest.raises(NotFoundError):
            tx.groups.add_member(acme.id, "grp-acme-ops", gina.id, at=T0)
        with pytest.raises(NotFoundError):
            tx.groups.add_member(globex.id, "grp-acme-ops", gina.id, at=T0)
        assert tx.groups.groups_of(acme.id, gina.id) == []


def test_group_update_remove_member_delete_and_forget(storage: Storage) -> None:
    acme, _, alice, bob, _ = seed_people(storage)
    ops = make_group(acme, "ops")
    with storage.transaction() as tx:
        tx.groups.create(ops)
        tx.groups.add_member(acme.id, ops.id, alice.id, at=T0)
        tx.groups.add_member(acme.id, ops.id, bob.id, at=T0)
        tx.groups.update(replace(ops, display_name="Operations"))
    with storage.transaction() as tx:
        assert tx.groups.get_by_name(acme.id, "ops").display_name == "Operations"
        assert tx.groups.remove_member(acme.id, ops.id, alice.id)
        assert not tx.groups.remove_member(acme.id, ops.id, alice.id)
        tx.groups.forget_principal(acme.id, bob.id)
        assert tx.groups.members(acme.id, [ops.id]) == {}
        tx.groups.add_member(acme.id, ops.id, alice.id, at=T0)
        tx.groups.delete(acme.id, ops.id)
        assert tx.groups.groups_of(acme.id, alice.id) == []
        with pytest.raises(NotFoundError):
            tx.groups.delete(acme.id, ops.id)


def test_tenant_state_defaults_and_round_trips(storage: Storage) -> None:
    (acme,) = seed_tenant(storage, "acme")
    with storage.transaction() as tx:
        assert tx.tenant_states.get(acme.id) == TenantState(acme.id)
        tx.tenant_states.put(TenantState(acme.id, "ACME Corp", disabled=True))
    with storage.transaction() as tx:
        assert tx.tenant_states.get(acme.id) == TenantState(acme.id, "ACME Corp", True)
        tx.tenant_states.put(TenantState(acme.id, "ACME", disabled=False))
        assert tx.tenant_states.get(acme.id).display_name == "ACME"
        with pytest.raises(NotFoundError):
            tx.tenant_states.put(TenantState("ghost"))


def test_principal_update_and_delete(storage: Storage) -> None:
    acme, globex, alice, bob, _ = seed_people(storage)
    with storage.transaction() as tx:
        tx.principals.update(replace(alice, display_name="Alice A.", disabled=True))
        tx.api_keys.create(make_key(bob))
    with storage.transaction() as tx:
        stored = tx.principals.get(acme.id, alice.id)
        assert (stored.display_name, stored.disabled, stored.name) == ("Alice A.", True, "alice")
        with pytest.raises(NotFoundError):
            tx.principals.update(replace(alice, tenant_id=globex.id))
        tx.principals.delete(acme.id, alice.id)
        with pytest.raises(NotFoundError):
            tx.principals.get(acme.id, alice.id)
    with pytest.raises(NotFoundError), storage.transaction() as tx:
        tx.principals.delete(acme.id, bob.id)  # still owns a key
    with storage.transaction() as tx:
        assert tx.api_keys.delete_owned(acme.id, bob.id) == 1
        tx.principals.delete(acme.id, bob.id)


def test_tenant_delete_only_when_empty(storage: Storage) -> None:
    acme, _globex, *_ = seed_people(storage)
    (empty,) = seed_tenant(storage, "empty")
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.tenants.delete(acme.id)
    with storage.transaction() as tx:
        tx.tenant_states.put(TenantState(empty.id, "x"))
        tx.tenant_states.delete(empty.id)
        tx.tenants.delete(empty.id)
        with pytest.raises(NotFoundError):
            tx.tenants.delete(empty.id)
        assert [t.name for t in tx.tenants.list()] == ["acme", "globex"]


def test_api_key_retire_renames_and_only_brings_expiry_forward(storage: Storage) -> None:
    acme, _, alice, _, _ = seed_people(storage)
    key = make_key(alice, expires_at=T0 + timedelta(days=1))
    with storage.transaction() as tx:
        tx.api_keys.create(key)
        retired = tx.api_keys.retire(
            acme.id, key.id, expires_at=T0 + timedelta(hours=1), name="ci~1"
        )
        assert (retired.name, retired.expires_at) == ("ci~1", T0 + timedelta(hours=1))
        later = tx.api_keys.retire(acme.id, key.id, expires_at=T0 + timedelta(days=9), name="ci~1")
        assert later.expires_at == T0 + timedelta(hours=1)


def test_password_put_replaces_and_is_tenant_scoped(storage: Storage) -> None:
    acme, globex, alice, _, _ = seed_people(storage)
    first = PasswordCredential(acme.id, alice.id, "$argon2id$one", T0)
    second = PasswordCredential(acme.id, alice.id, "$argon2id$two", T0, ("$argon2id$one",))
    with storage.transaction() as tx:
        tx.passwords.put(first)
        tx.passwords.put(second)
    with storage.transaction() as tx:
        assert tx.passwords.get(acme.id, alice.id) == second
        assert tx.passwords.lock(acme.id, alice.id) == second  # the same row, held
        assert tx.passwords.get(globex.id, alice.id) is None
        assert tx.passwords.lock(globex.id, alice.id) is None
        with pytest.raises(NotFoundError):
            tx.passwords.put(replace(first, tenant_id=globex.id))
        tx.passwords.delete(acme.id, alice.id)
        assert tx.passwords.get(acme.id, alice.id) is None


def test_throttle_counter_is_created_locked_and_stored(storage: Storage) -> None:
    with storage.transaction() as tx:
        fresh = tx.throttles.lock("acct:x", at=T0)
        assert fresh == ThrottleState("acct:x", 0, T0, forget_at=T0)
        tx.throttles.put(replace(fresh, failures=3, locked_until=T0 + timedelta(minutes=1)))
    with storage.transaction() as tx:
        again = tx.throttles.lock("acct:x", at=T0 + timedelta(hours=1))
    assert (again.failures, again.window_start) == (3, T0)
    assert again.locked_until == T0 + timedelta(minutes=1)


def test_throttle_counters_past_their_forget_time_are_forgotten_soonest_first(
    storage: Storage,
) -> None:
    forget_at: dict[str, datetime | None] = {
        "a": T0 + timedelta(minutes=2),
        "b": T0 + timedelta(minutes=1),
        "c": T0 + timedelta(minutes=10),
        "d": None,
    }
    with storage.transaction() as tx:
        for key, moment in forget_at.items():
            state = tx.throttles.lock(key, at=T0)
            tx.throttles.put(replace(state, failures=1, forget_at=moment))
    now = T0 + timedelta(minutes=5)
    with storage.transaction() as tx:
        assert tx.throttles.forget(now=now, limit=1) == 1
    with storage.transaction() as tx:
        assert tx.throttles.lock("a", at=now).failures == 1  # "b" went first
        assert tx.throttles.lock("b", at=now).failures == 0  # forgotten: a new counter
    with storage.transaction() as tx:
        assert tx.throttles.forget(now=now, limit=10) == 2  # "a", and "b" made anew at `now`
        assert tx.throttles.forget(now=now, limit=10) == 0
    with storage.transaction() as tx:
        kept = {key: tx.throttles.lock(key, at=now) for key in "cd"}
    # Not due yet, or stored without a forget time (before migration 0005): kept.
    assert {key: state.failures for key, state in kept.items()} == {"c": 1, "d": 1}


def while_held(
    storage: Storage, hold: Callable[[UnitOfWork], None], work: Callable[[], None]
) -> None:
    """Run ``work`` while another thread's unit of work on ``storage`` holds what ``hold``
    locks, and check that ``work`` finished before that unit of work did (it never waited)."""
    holding, done = threading.Event(), threading.Event()

    def holder() -> None:
        with storage.transaction() as tx:
            hold(tx)
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)
    try:
        work()
        assert thread.is_alive()  # still holding: work did not wait for it
    finally:
        done.set()
        thread.join()


@pytest.mark.postgres
def test_forgetting_skips_a_counter_another_login_holds(clean_postgres_url: str) -> None:
    """PostgreSQL: forgetting neither waits for nor removes a counter a login is counting
    under (SQLite has one writer at a time, so the two never overlap there)."""
    backend = Backend("postgres", clean_postgres_url)
    storages = [backend.open(), backend.open()]
    storages[0].migrate()
    with storages[0].transaction() as tx:
        for key in ("held", "free"):
            state = tx.throttles.lock(key, at=T0)
            tx.throttles.put(replace(state, failures=1, forget_at=T0))

    def count_under_held(tx: UnitOfWork) -> None:
        state = tx.throttles.lock("held", at=T0 + timedelta(hours=1))
        tx.throttles.put(replace(state, failures=2, forget_at=T0 + timedelta(days=1)))

    def forget() -> None:
        with storages[1].transaction() as tx:
            assert tx.throttles.forget(now=T0 + timedelta(hours=1), limit=10) == 1

    while_held(storages[0], count_under_held, forget)
    with storages[1].transaction() as tx:
        assert tx.throttles.lock("held", at=T0).failures == 2
        assert tx.throttles.lock("free", at=T0).failures == 0
    backend.close()


@pytest.mark.postgres
def test_forgetting_skips_a_refresh_token_another_refresh_holds(clean_postgres_url: str) -> None:
    backend = Backend("postgres", clean_postgres_url)
    storages = [backend.open(), backend.open()]
    storages[0].migrate()
    _, _, alice, _, _ = seed_people(storages[0])
    with storages[0].transaction() as tx:
        for name in ("held", "free"):
            tx.refresh_tokens.create(replace(make_refresh(alice, name, family=name), expires_at=T0))

    def use_held(tx: UnitOfWork) -> None:
        assert tx.refresh_tokens.mark_used("rt-held", at=T0)

    def forget() -> None:
        with storages[1].transaction() as tx:
            assert tx.refresh_tokens.forget_expired(before=T0 + timedelta(days=1), limit=10) == 1

    while_held(storages[0], use_held, forget)
    with storages[1].transaction() as tx:
        assert tx.refresh_tokens.find_by_hash(b"hash-held") is not None
        assert tx.refresh_tokens.find_by_hash(b"hash-free") is None
    backend.close()


def test_concurrent_throttle_failures_are_all_counted(backend: Backend) -> None:
    storages = [backend.open(), backend.open()]
    storages[0].migrate()
    start = threading.Barrier(2)

    def fail(storage: Storage) -> None:
        start.wait()
        for _ in range(20):
            with storage.transaction() as tx:
                state = tx.throttles.lock("ip:1.2.3.4", at=T0)
                tx.throttles.put(replace(state, failures=state.failures + 1))

    threads = [threading.Thread(target=fail, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with storages[0].transaction() as tx:
        assert tx.throttles.lock("ip:1.2.3.4", at=T0).failures == 40


def make_refresh(owner: Principal, name: str, family: str = "fam-1") -> RefreshToken:
    return RefreshToken(
        id=f"rt-{name}",
        tenant_id=owner.tenant_id,
        principal_id=owner.id,
        family_id=family,
        token_hash=f"hash-{name}".encode(),
        scopes=("patterns:read",),
        created_at=T0,
        expires_at=T0 + timedelta(days=7),
    )


def test_refresh_token_single_use_and_family_revocation(storage: Storage) -> None:
    acme, _, alice, bob, _ = seed_people(storage)
    one, two = make_refresh(alice, "one"), make_refresh(alice, "two")
    other = make_refresh(bob, "other", family="fam-2")
    with storage.transaction() as tx:
        for token in (one, two, other):
            tx.refresh_tokens.create(token)
        assert tx.refresh_tokens.find_by_hash(b"hash-one") == one
        assert tx.refresh_tokens.find_by_hash(b"nope") is None
        assert tx.refresh_tokens.mark_used(one.id, at=T0)
        assert not tx.refresh_tokens.mark_used(one.id, at=T0)
        assert tx.refresh_tokens.revoke_family("fam-1", at=T0) == 2
        assert tx.refresh_tokens.revoke_family("fam-1", at=T0) == 0
        assert not tx.refresh_tokens.mark_used(two.id, at=T0)
        assert tx.refresh_tokens.revoke_for_principal(acme.id, bob.id, at=T0) == ["fam-2"]
        assert tx.refresh_tokens.revoke_for_principal(acme.id, bob.id, at=T0) == []
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.refresh_tokens.create(replace(one, id="rt-dup"))
    with storage.transaction() as tx:
        tx.refresh_tokens.delete_owned(acme.id, alice.id)
        assert tx.refresh_tokens.find_by_hash(b"hash-two") is None


def test_a_family_revocation_shows_for_a_successor_stored_after_it(storage: Storage) -> None:
    """What `TokenService.refresh` relies on: a revocation marks the tokens it saw, and a
    successor stored after it (on PostgreSQL: concurrently, outside its snapshot) still finds
    its family revoked. The revocation of a principal's tokens names their families."""
    _, _, alice, _, _ = seed_people(storage)
    with storage.transaction() as tx:
        tx.refresh_tokens.create(make_refresh(alice, "t0"))
        tx.refresh_tokens.create(make_refresh(alice, "other", family="fam-other"))
        assert not tx.refresh_tokens.family_revoked("fam-1")
    with storage.transaction() as tx:
        assert tx.refresh_tokens.revoke_family("fam-1", at=T0) == 1
    with storage.transaction() as tx:
        tx.refresh_tokens.create(make_refresh(alice, "t1"))
        stored = tx.refresh_tokens.find_by_hash(b"hash-t1")
        assert stored is not None and stored.revoked_at is None
        assert tx.refresh_tokens.family_revoked("fam-1")
        assert not tx.refresh_tokens.family_revoked("fam-other")
        assert not tx.refresh_tokens.family_revoked("fam-unknown")
    with storage.transaction() as tx:
        families = tx.refresh_tokens.revoke_for_principal(alice.tenant_id, alice.id, at=T0)
        assert families == ["fam-1", "fam-other"]  # t1 and other: each family once
        assert tx.refresh_tokens.family_revoked("fam-other")


def test_expired_refresh_tokens_are_forgotten_soonest_first(storage: Storage) -> None:
    _, _, alice, _, _ = seed_people(storage)
    days = {"a": 3, "b": 1, "c": 2, "d": 9}
    with storage.transaction() as tx:
        for name, day in days.items():
            token = make_refresh(alice, name, family=f"fam-{name}")
            tx.refresh_tokens.create(replace(token, expires_at=T0 + timedelta(days=day)))
    before = T0 + timedelta(days=5)
    with storage.transaction() as tx:
        assert tx.refresh_tokens.forget_expired(before=before, limit=1) == 1
    with storage.transaction() as tx:
        assert tx.refresh_tokens.find_by_hash(b"hash-b") is None  # the soonest expired
        assert tx.refresh_tokens.find_by_hash(b"hash-c") is not None
        assert tx.refresh_tokens.forget_expired(before=before, limit=10) == 2
        assert tx.refresh_tokens.forget_expired(before=before, limit=10) == 0
    with storage.transaction() as tx:
        assert tx.refresh_tokens.find_by_hash(b"hash-d") is not None  # not expired by then


def test_refresh_token_used_concurrently_is_used_once(backend: Backend) -> None:
    storage = backend.open()
    storage.migrate()
    _, _, alice, _, _ = seed_people(storage)
    with storage.transaction() as tx:
        tx.refresh_tokens.create(make_refresh(alice, "race"))
    storages = [backend.open() for _ in range(4)]
    start = threading.Barrier(len(storages))
    wins: list[bool] = []

    def use(s: Storage) -> None:
        start.wait()
        with s.transaction() as tx:
            wins.append(tx.refresh_tokens.mark_used("rt-race", at=T0))

    threads = [threading.Thread(target=use, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]


def make_registration(tenant: Tenant, name: str) -> RegistrationToken:
    return RegistrationToken(
        id=f"reg-{name}",
        tenant_id=tenant.id,
        token_hash=f"h-{name}".encode(),
        prefix="bat_abcd",
        capabilities=("classification", "analysis"),
        roles=("operator",),
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
    )


def test_registration_token_claim_once_expiry_and_revoke(storage: Storage) -> None:
    acme, globex = seed_tenant(storage, "acme", "globex")
    token, late, revoked = (make_registration(acme, n) for n in ("a", "b", "c"))
    with storage.transaction() as tx:
        for item in (token, late, revoked):
            tx.registration_tokens.create(item)
        assert tx.registration_tokens.find_by_hash(b"h-a") == token
        assert tx.registration_tokens.claim(token.id, agent_id="agt-1", at=T0)
        assert not tx.registration_tokens.claim(token.id, agent_id="agt-2", at=T0)
        assert not tx.registration_tokens.claim(late.id, agent_id="x", at=T0 + timedelta(hours=1))
        tx.registration_tokens.revoke(acme.id, revoked.id, at=T0)
        assert not tx.registration_tokens.claim(revoked.id, agent_id="x", at=T0)
        with pytest.raises(NotFoundError):
            tx.registration_tokens.revoke(globex.id, revoked.id, at=T0)
    with storage.transaction() as tx:
        listed = tx.registration_tokens.list(acme.id)
    assert [t.id for t in listed] == ["reg-a", "reg-b", "reg-c"]
    assert listed[0].agent_id == "agt-1"
    with storage.transaction() as tx:
        assert tx.registration_tokens.get(acme.id, "reg-c") == listed[2]
        assert tx.registration_tokens.get(acme.id, "reg-c").revoked_at is not None
        with pytest.raises(NotFoundError):
            tx.registration_tokens.get(globex.id, "reg-c")
        with pytest.raises(NotFoundError):
            tx.registration_tokens.get(acme.id, "reg-missing")
    assert listed[0].capabilities == ("classification", "analysis")


def test_registration_tokens_are_forgotten_soonest_expired_first_or_deleted_one_by_one(
    storage: Storage,
) -> None:
    acme, globex = seed_tenant(storage, "acme", "globex")
    hours = {"a": 3, "b": 1, "c": 2, "d": 9}
    tokens = {
        name: replace(make_registration(acme, name), expires_at=T0 + timedelta(hours=h))
        for name, h in hours.items()
    }
    with storage.transaction() as tx:
        for token in tokens.values():
            tx.registration_tokens.create(token)
        tx.registration_tokens.claim("reg-c", agent_id="agt-1", at=T0)  # used or not: all go
    before = T0 + timedelta(hours=5)
    with storage.transaction() as tx:
        assert tx.registration_tokens.forget_expired(before=before, limit=2) == 2
        assert [t.id for t in tx.registration_tokens.list(acme.id)] == ["reg-a", "reg-d"]
        assert tx.registration_tokens.forget_expired(before=before, limit=0) == 0
        assert tx.registration_tokens.forget_expired(before=before, limit=9) == 1
        assert tx.registration_tokens.find_by_hash(b"h-a") is None
        with pytest.raises(NotFoundError):
            tx.registration_tokens.delete(globex.id, "reg-d")  # not another tenant's
        tx.registration_tokens.delete(acme.id, "reg-d")
        assert tx.registration_tokens.list(acme.id) == []
        with pytest.raises(NotFoundError):
            tx.registration_tokens.delete(acme.id, "reg-d")


def test_signing_keys_list_and_retire(storage: Storage) -> None:
    old = SigningKey("kid-1", "RS256", '{"kty":"RSA"}', b"sealed-1", T0)
    new = SigningKey("kid-2", "ES256", '{"kty":"EC"}', b"sealed-2", T0 + timedelta(days=1))
    with storage.transaction() as tx:
        tx.signing_keys.create(new)
        tx.signing_keys.create(old)
        tx.signing_keys.retire(
            "kid-1", at=T0 + timedelta(days=1), publish_until=T0 + timedelta(days=2)
        )
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.signing_keys.create(old)
    with storage.transaction() as tx:
        keys = tx.signing_keys.list()
    assert [k.kid for k in keys] == ["kid-1", "kid-2"]
    assert keys[0].retired_at == T0 + timedelta(days=1)
    assert keys[0].publish_until == T0 + timedelta(days=2)
    assert keys[1] == new


def test_spent_revocations_are_forgotten_soonest_first(storage: Storage) -> None:
    minutes = {"jti-a": 30, "jti-b": 10, "jti-c": 20, "jti-d": 90}
    with storage.transaction() as tx:
        for jti, expiry in minutes.items():
            expires = T0 + timedelta(minutes=expiry)
            tx.revocations.revoke_token(RevokedToken(jti, "ten-acme", expires, T0))
    before = T0 + timedelta(hours=1)
    with storage.transaction() as tx:
        assert tx.revocations.forget_expired(before=before, limit=1) == 1
    with storage.transaction() as tx:
        assert not tx.revocations.is_token_revoked("jti-b")  # the soonest expired
        assert tx.revocations.is_token_revoked("jti-c")
        assert tx.revocations.forget_expired(before=before, limit=10) == 2
        assert tx.revocations.forget_expired(before=before, limit=10) == 0
        assert tx.revocations.is_token_revoked("jti-d")  # its token has not expired by then


def test_revocation_epoch_and_revoked_tokens(storage: Storage) -> None:
    with storage.transaction() as tx:
        start = tx.revocations.epoch()
        assert tx.revocations.bump() == start + 1
        revoked = RevokedToken("jti-1", "ten-acme", T0 + timedelta(minutes=15), T0)
        tx.revocations.revoke_token(revoked)
        tx.revocations.revoke_token(revoked)
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.revocations.bump()
        raise RuntimeError("rolled back")
    with storage.transaction() as tx:
        assert tx.revocations.epoch() == start + 1
        assert tx.revocations.is_token_revoked("jti-1")
        assert not tx.revocations.is_token_revoked("jti-2")
