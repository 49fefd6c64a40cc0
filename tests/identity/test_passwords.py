"""Password policy, Argon2id parameters, bcrypt import and rehash, history and expiry."""

from __future__ import annotations

from datetime import timedelta

import bcrypt
import pytest

from bastion.backends.memory import MemoryStorage
from bastion.core.password_policy import PasswordPolicy, policy_violations
from bastion.crypto.passwords import PasswordHasher
from bastion.errors import AuthenticationError, PasswordChangeRequiredError, RequestRejectedError
from bastion.services.login import LoginRequest
from bastion.services.passwords import common_passwords
from tests.identity.conftest import PASSWORD, World, make_world


def login(world: World, username: str, password: str, **kw: object) -> str:
    request = LoginRequest("default", username, password, "10.0.0.1", "pytest", **kw)  # type: ignore[arg-type]
    return world.identity.logins.login(request).principal.name


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short-1a", "at least 12 characters"),
        ("alllowercase-123", "uppercase"),
        ("ALLUPPERCASE-123", "lowercase"),
        ("No-Digits-Here-At-All", "digits"),
        ("NoSymbols1234567", "symbols"),
    ],
)
def test_policy_names_each_broken_rule(password: str, problem: str) -> None:
    problems = policy_violations(password, PasswordPolicy(), common=frozenset())
    assert any(problem in p for p in problems)


def test_common_password_list_is_large_and_used() -> None:
    common = common_passwords()
    assert len(common) >= 10_000
    assert "password" in common and "qwerty" in common
    relaxed = PasswordPolicy(
        min_length=8, require_symbols=False, require_uppercase=False, require_digits=False
    )
    assert "is a commonly used password" in policy_violations("Sunshine", relaxed, common=common)


def test_acceptable_password_has_no_violations() -> None:
    assert policy_violations(PASSWORD, PasswordPolicy(), common=common_passwords()) == []


def test_argon2id_uses_owasp_parameters() -> None:
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(stored, PASSWORD)
    assert not hasher.verify(stored, PASSWORD + "x")
    assert not hasher.needs_rehash(stored)


def test_password_is_stored_only_as_argon2id(world: World) -> None:
    user = world.user("dana@example.com")
    with world.services.storage.transaction() as tx:
        stored = tx.passwords.get(world.tenant.id, user.id)
    assert stored is not None and stored.hash.startswith("$argon2id$")
    assert PASSWORD not in repr(stored)


def test_bcrypt_hash_is_imported_and_rehashed_at_login(world: World) -> None:
    user = world.user("erin@example.com", password=None)
    imported = bcrypt.hashpw(b"legacy password from spec 001", bcrypt.gensalt(4)).decode()
    with world.services.storage.transaction() as tx:
        world.identity.passwords.import_hash(tx, user, imported, now=world.clock.now())
    assert login(world, "erin@example.com", "legacy password from spec 001") == "erin@example.com"
    with world.services.storage.transaction() as tx:
        stored = tx.passwords.get(world.tenant.id, user.id)
    assert stored is not None and stored.hash.startswith("$argon2id$")
    assert login(world, "erin@example.com", "legacy password from spec 001") == "erin@example.com"


def test_import_refuses_unknown_hash_formats(world: World) -> None:
    user = world.user("fay@example.com", password=None)
    with pytest.raises(RequestRejectedError), world.services.storage.transaction() as tx:
        world.identity.passwords.import_hash(tx, user, "plaintext", now=world.clock.now())


def test_last_five_passwords_cannot_be_reused(world: World) -> None:
    user = world.user("gil@example.com")
    passwords = world.identity.passwords
    history = [PASSWORD] + [f"Another-Good-{n}-Phrase" for n in range(5)]
    for new in history[1:]:
        with world.services.storage.transaction() as tx:
            passwords.set_password(tx, user, new, now=world.clock.now())
    for reused in history[2:]:
        with (
            pytest.raises(RequestRejectedError, match="last 5"),
            world.services.storage.transaction() as tx,
        ):
            passwords.set_password(tx, user, reused, now=world.clock.now())
    with world.services.storage.transaction() as tx:
        passwords.set_password(tx, user, PASSWORD, now=world.clock.now())  # six ago: allowed


def test_expired_password_must_be_changed_at_login(clock: object) -> None:
    world = make_world(
        "sqlite:///unused.db",
        storage=MemoryStorage(),
        extra="  authentication:\n    passwords:\n      expiry: 90d\n",
    )
    world.user("hal@example.com")
    world.clock.advance(days=91)
    with pytest.raises(PasswordChangeRequiredError):
        login(world, "hal@example.com", PASSWORD)
    assert (
        login(world, "hal@example.com", PASSWORD, new_password="Fresh-Phrase-2026!")
        == "hal@example.com"
    )
    assert login(world, "hal@example.com", "Fresh-Phrase-2026!") == "hal@example.com"
    world.clock.advance(days=1)
    with pytest.raises(AuthenticationError):
        login(world, "hal@example.com", PASSWORD)


def test_login_name_is_canonicalised(world: World) -> None:
    world.user("ivy@example.com")
    assert login(world, "  IVY@Example.COM ", PASSWORD) == "ivy@example.com"
    world.clock.advance(seconds=timedelta(minutes=1).total_seconds())


def test_basic_auth_users_from_the_file_are_seeded_once_with_their_hash() -> None:
    from bastion.wiring_identity import seed_basic_auth_users

    legacy = bcrypt.hashpw(b"spec 001 admin password", bcrypt.gensalt(4)).decode()
    extra = (
        "  authentication:\n    basicAuth:\n      users:\n"
        f"        - {{username: Legacy@Example.com, passwordHash: '{legacy}'}}\n"
    )
    world = make_world("sqlite:///unused.db", storage=MemoryStorage(), extra=extra)
    assert seed_basic_auth_users(world.services) == 1
    assert seed_basic_auth_users(world.services) == 0
    assert login(world, "legacy@example.com", "spec 001 admin password") == "legacy@example.com"
