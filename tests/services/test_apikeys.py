"""API key service: issue once, authenticate with the true reason, revoke, and audit each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bastion.core.audit import first_broken_seq
from bastion.core.model import AuditQuery
from bastion.errors import AuthenticationError, ConflictError, RequestRejectedError
from tests.services.conftest import ACTOR, FrozenClock, World


def authenticate(world: World, presented: str) -> str:
    with world.storage.transaction() as tx:
        return world.api_keys.verify(tx, presented).principal.name


def reason(world: World, presented: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        authenticate(world, presented)
    assert str(caught.value) == "authentication required"  # the same words for every cause
    return caught.value.reason


def test_bootstrap_key_authenticates_canonical_admin(world: World) -> None:
    assert authenticate(world, world.boot.admin_key.secret) == "admin@example.com"


def test_key_is_stored_only_as_keyed_hash(world: World) -> None:
    secret = world.boot.admin_key.secret
    with world.storage.transaction() as tx:
        [stored] = tx.api_keys.page(world.boot.tenant.id, after=None, limit=None)
    assert secret not in repr(stored)
    assert stored.prefix == secret[:14]


def test_failure_reasons(world: World, clock: FrozenClock) -> None:
    assert reason(world, "bk_live_nonsense") == "malformed_key"
    assert reason(world, world.boot.admin_key.secret[:-6] + "AAAAAA") == "malformed_key"
    from bastion.crypto.keys import new_api_key

    assert reason(world, new_api_key()) == "unknown_key"
    issued = world.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="temp",
        scopes=["patterns:read"],
        expires_at=clock.now() + timedelta(hours=1),
        actor=ACTOR,
    )
    assert authenticate(world, issued.secret) == "admin@example.com"
    clock.advance(hours=1)
    assert reason(world, issued.secret) == "expired_key"
    world.api_keys.revoke(tenant_name="default", reference="bootstrap-admin", actor=ACTOR)
    assert reason(world, world.boot.admin_key.secret) == "revoked_key"


def test_create_and_revoke_are_audited_in_a_verifying_chain(world: World) -> None:
    issued = world.api_keys.create(
        tenant_name="default",
        owner_name="ADMIN@example.com",
        name="ci",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    world.api_keys.revoke(tenant_name="default", reference=issued.key.id, actor=ACTOR)
    with world.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(limit=100))
    actions = [e.action for e in events]
    assert actions[-2:] == ["apikey.create", "apikey.revoke"]
    assert first_broken_seq(events) is None
    assert issued.secret not in repr(events)


def test_revoking_a_revoked_key_changes_nothing_and_records_nothing(
    world: World, clock: FrozenClock
) -> None:
    issued = world.api_keys.create(
        tenant_name="default",
        owner_name="admin@example.com",
        name="twice",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    first = world.api_keys.revoke(tenant_name="default", reference="twice", actor=ACTOR)
    clock.advance(hours=1)
    again = world.api_keys.revoke(tenant_name="default", reference="twice", actor=ACTOR)
    assert again.revoked_at == first.revoked_at
    with world.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action="apikey.revoke", limit=100))
    assert [e.resource["id"] for e in events].count(issued.key.id) == 1


def test_leaked_key_is_revoked_by_pasting_it_and_never_echoed(world: World) -> None:
    """The operator holding a leaked key revokes it as found; an unknown one is named by its
    display prefix only."""
    from bastion.crypto.keys import new_api_key
    from bastion.errors import NotFoundError

    issued = world.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="leaked",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    revoked = world.api_keys.revoke(tenant_name="default", reference=issued.secret, actor=ACTOR)
    assert revoked.id == issued.key.id and revoked.revoked_at is not None
    assert reason(world, issued.secret) == "revoked_key"
    stranger = new_api_key()
    with pytest.raises(NotFoundError) as caught:
        world.api_keys.revoke(tenant_name="default", reference=stranger, actor=ACTOR)
    assert stranger not in str(caught.value) and stranger[:14] in str(caught.value)


def test_bad_scopes_and_past_expiry_rejected(world: World, clock: FrozenClock) -> None:
    with pytest.raises(RequestRejectedError):
        world.api_keys.create(
            tenant_name="default",
            owner_name=None,
            name="x",
            scopes=["nonsense"],
            expires_at=None,
            actor=ACTOR,
        )
    with pytest.raises(RequestRejectedError):
        world.api_keys.create(
            tenant_name="default",
            owner_name=None,
            name="x",
            scopes=["admin"],
            expires_at=clock.now(),
            actor=ACTOR,
        )


def test_duplicate_name_conflicts_and_writes_nothing(world: World) -> None:
    with world.storage.transaction() as tx:
        before = len(tx.audit.query(AuditQuery(limit=1000)))
    with pytest.raises(ConflictError):
        world.api_keys.create(
            tenant_name="default",
            owner_name=None,
            name="bootstrap-admin",
            scopes=["admin"],
            expires_at=None,
            actor=ACTOR,
        )
    with world.storage.transaction() as tx:
        assert len(tx.audit.query(AuditQuery(limit=1000))) == before
