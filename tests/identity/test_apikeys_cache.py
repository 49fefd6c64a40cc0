"""The API-key hot path: rotation with a grace period, and a verified-key cache that honours
expiry and revocation made by any process (through the revocation epoch)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.backends.protocols import UnitOfWork
from bastion.crypto.keys import new_api_key
from bastion.errors import AuthenticationError, RequestRejectedError, StorageError
from bastion.services.access import RequestFacts
from bastion.services.apikeys import IssuedKey
from tests.identity.conftest import ACTOR, World, make_world


def verify(world: World, secret: str) -> str:
    with world.services.storage.transaction() as tx:
        return world.services.api_keys.verify(tx, secret).credential_id


def reason(world: World, secret: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verify(world, secret)
    return caught.value.reason


def ci_key(world: World) -> IssuedKey:
    """A key named ci, for patterns:read, that does not expire."""
    return world.services.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="ci",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )


def test_rotation_gives_a_grace_period_then_only_the_new_key_works(world: World) -> None:
    old = ci_key(world)
    verify(world, old.secret)
    new = world.services.api_keys.rotate(
        tenant_name="default", reference="ci", grace=timedelta(hours=1), actor=ACTOR
    )
    assert new.key.name == "ci" and new.key.scopes == ("patterns:read",)
    assert verify(world, old.secret) == old.key.id
    assert verify(world, new.secret) == new.key.id
    world.clock.advance(hours=1)
    assert reason(world, old.secret) == "expired_key"
    assert verify(world, new.secret) == new.key.id


def test_cached_key_honours_its_expiry(world: World) -> None:
    issued = world.services.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="short",
        scopes=["patterns:read"],
        expires_at=world.clock.now() + timedelta(minutes=5),
        actor=ACTOR,
    )
    verify(world, issued.secret)
    world.clock.advance(minutes=5)
    assert reason(world, issued.secret) == "expired_key"


def test_malformed_key_is_refused_before_any_lookup(world: World) -> None:
    class Exploding:
        def __getattr__(self, name: str) -> object:
            raise AssertionError("the database was consulted")

    tx: UnitOfWork = Exploding()  # type: ignore[assignment]
    secret = world.boot.admin_key.secret
    for bad in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), "bk_live_short", secret + "x"):
        with pytest.raises(AuthenticationError) as caught:
            world.services.api_keys.verify(tx, bad)
        assert caught.value.reason == "malformed_key"


def test_revocation_by_another_process_holds_on_the_next_request(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    server = make_world(url)
    cli = make_world(url, clock=server.clock)  # the CLI: another process on the same database
    secret = server.boot.admin_key.secret
    verify(server, secret)
    verify(server, secret)  # now served from the cache
    cli.services.api_keys.revoke(tenant_name="default", reference="bootstrap-admin", actor=ACTOR)
    assert reason(server, secret) == "revoked_key"


def test_cache_hit_does_not_read_the_key_again(world: World) -> None:
    secret = world.boot.admin_key.secret
    verify(world, secret)
    with world.services.storage.transaction() as tx:
        reads: list[bytes] = []
        original = tx.api_keys.find_by_hash

        def counting(digest: bytes) -> object:
            reads.append(digest)
            return original(digest)

        tx.api_keys.find_by_hash = counting  # type: ignore[method-assign]
        world.services.api_keys.verify(tx, secret)
    assert reads == []


def test_made_up_keys_are_refused_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """A flood of well-formed made-up keys must neither queue on nor hold SQLite's write lock:
    the look-up that refuses them only reads. (Were it to take the lock, the check would wait
    out the busy timeout and fail with a storage error, not `unknown_key`.)"""
    world = make_world(f"sqlite:///{tmp_path}/b.db")
    writer = sqlite3.connect(tmp_path / "b.db", timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process's long write, throughout
    try:
        for _ in range(3):
            facts = RequestFacts("GET", "/api/x", new_api_key(), "127.0.0.1", "pytest", "req")
            verdict = world.services.access.check(facts)
            assert isinstance(verdict.error, AuthenticationError)
            assert verdict.error.reason == "unknown_key"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert verify(world, world.boot.admin_key.secret)  # a real key still gets its unit of work


def test_known_key_is_identified_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """Identifying a key only reads: another replica (its own, empty cache) identifies a key
    whose last-used time is current while a writer holds SQLite's write lock throughout."""
    url = f"sqlite:///{tmp_path}/b.db"
    first = make_world(url)
    secret = first.boot.admin_key.secret
    first.services.access.identify(secret)  # records the use: last-used is current
    second = make_world(url, clock=first.clock)
    writer = sqlite3.connect(tmp_path / "b.db", timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        caller = second.services.access.identify(secret)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert caller.identity.principal.name == "admin@example.com"


def last_used(world: World) -> object:
    with world.services.storage.read_only() as tx:
        return tx.api_keys.get(world.tenant.id, world.boot.admin_key.key.id).last_used_at


def test_last_used_time_is_written_after_identification_at_most_once_a_minute(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = world.boot.admin_key.secret
    assert last_used(world) is None
    world.services.access.identify(secret)
    first = world.clock.now()
    assert last_used(world) == first
    storage, writes = world.services.storage, []
    original = storage.transaction

    def counting() -> object:
        writes.append(world.clock.now())
        return original()

    monkeypatch.setattr(storage, "transaction", counting)
    world.clock.advance(seconds=30)
    world.services.access.identify(secret)
    assert (writes, last_used(world)) == ([], first)  # within the minute: no write at all
    world.clock.advance(seconds=31)
    world.services.access.identify(secret)
    assert len(writes) == 1 and last_used(world) == world.clock.now()


def test_a_failed_last_used_write_does_not_refuse_the_request_and_is_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision rests on what was read; the last-used time is kept for the next try."""
    secret = world.boot.admin_key.secret
    storage = world.services.storage
    original = storage.transaction

    def broken() -> object:
        raise StorageError("database is locked")

    monkeypatch.setattr(storage, "transaction", broken)
    used_at = world.clock.now()
    caller = world.services.access.identify(secret)  # identified: no error raised
    assert caller.identity.principal.name == "admin@example.com"
    assert last_used(world) is None
    monkeypatch.setattr(storage, "transaction", original)
    world.clock.advance(seconds=5)
    world.services.access.identify(secret)
    assert last_used(world) == used_at


def test_a_key_already_replaced_by_a_rotation_is_not_rotated_again(world: World) -> None:
    """Rotating the old key during its grace period gave a key that expired with it, under a
    name that grew a suffix each time: the replacement is the key to rotate."""
    old = ci_key(world)
    world.services.api_keys.rotate(
        tenant_name="default", reference="ci", grace=timedelta(hours=1), actor=ACTOR
    )
    with pytest.raises(RequestRejectedError) as refused:
        world.services.api_keys.rotate(
            tenant_name="default", reference=old.key.id, grace=timedelta(hours=1), actor=ACTOR
        )
    assert str(refused.value) == (
        f"key {old.key.id} was already replaced by a rotation; rotate its replacement, ci"
    )
    again = world.services.api_keys.rotate(
        tenant_name="default", reference="ci", grace=timedelta(hours=1), actor=ACTOR
    )
    assert (again.key.name, again.key.expires_at) == ("ci", None)
    names = sorted(k.key.name for k in world.services.api_keys.list(tenant_name="default"))
    assert names.count("ci") == 1 and len([n for n in names if n.startswith("ci~")]) == 2
