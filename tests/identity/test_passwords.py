"""Password policy, Argon2id parameters, bcrypt import and rehash, history and expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import bcrypt
import pytest
from argon2 import PasswordHasher as Argon2

from bastion.backends.memory import MemoryStorage
from bastion.config import parse_config
from bastion.core.password_hashes import hash_problem
from bastion.core.password_policy import PasswordPolicy, policy_violations
from bastion.crypto.passwords import PasswordHasher
from bastion.errors import (
    AuthenticationError,
    ConfigError,
    PasswordChangeRequiredError,
    RequestRejectedError,
)
from bastion.services.login import LoginRequest
from bastion.services.passwords import common_passwords
from tests.e2e.procs import bastion
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


def genuine_hashes() -> list[tuple[str, str]]:
    """(hash, password) as bcrypt and argon2-cffi write them, with bastion's own parameters."""
    small = Argon2(memory_cost=64, time_cost=1, parallelism=1)
    made = bcrypt.hashpw(b"bcrypt-pw", bcrypt.gensalt(4)).decode()
    return [
        (made, "bcrypt-pw"),
        ("$2a$" + made[4:], "bcrypt-pw"),
        ("$2y$" + made[4:], "bcrypt-pw"),
        (PasswordHasher().hash("argon-pw"), "argon-pw"),
        (small.hash("small-pw"), "small-pw"),
        (Argon2(memory_cost=32, time_cost=1, parallelism=4, salt_len=8, hash_len=4).hash("x"), "x"),
    ]


def test_import_accepts_genuine_bcrypt_and_argon2id_hashes_that_verify() -> None:
    hasher = PasswordHasher()
    for hashed, password in genuine_hashes():
        assert hash_problem(hashed) is None, hashed
        assert hasher.verify(hashed, password), hashed


def malformed_hashes() -> list[str]:
    """Hashes with the right prefix that could never verify: a login would fail forever."""
    bcrypt_hash = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    argon = Argon2(memory_cost=64, time_cost=1, parallelism=1).hash("pw")
    salt = argon.split("$")[4]
    return [
        "$2b$04$abc",  # the review's example: accepted before, then no login ever worked
        bcrypt_hash + ".",  # 54 characters after the cost
        bcrypt_hash[:-1],
        bcrypt_hash[:4] + "03" + bcrypt_hash[6:],  # cost below 04
        bcrypt_hash[:4] + "32" + bcrypt_hash[6:],  # cost above 31
        bcrypt_hash[:4] + "4$" + bcrypt_hash[7:] + ".",  # a one-digit cost
        bcrypt_hash[:28] + "P" + bcrypt_hash[29:],  # salt with its unused bits set
        bcrypt_hash[:-1] + "D",  # hash with its unused bits set
        bcrypt_hash[:10] + "!" + bcrypt_hash[11:],  # outside bcrypt's alphabet
        "$2x$" + bcrypt_hash[4:],  # a prefix bastion does not import
        "$argon2id$v=19$m=1,t=1,p=1$xx$yy",  # the review's other example
        argon.replace("v=19", "v=16"),
        argon.replace("$v=19", ""),
        argon.replace("m=64", "m=064"),
        argon.replace("m=64", "m=7"),  # below 8 KiB a lane
        argon.replace("t=1", "t=0"),
        argon.replace(salt, salt[:10]),  # a salt of 7 bytes
        argon.replace(salt, salt[:-1] + "B"),  # base64 with its unused bits set
        argon + "=",
        argon + "\n",
        argon.replace("argon2id", "argon2i"),
        "",
        "garbage",
    ]


def test_import_refuses_a_hash_that_could_never_verify_without_quoting_it() -> None:
    hasher = PasswordHasher()
    for hashed in malformed_hashes():
        problem = hash_problem(hashed)
        assert problem is not None, hashed
        assert not hashed or hashed not in problem
        assert not hasher.verify(hashed, "pw"), hashed  # refused: it could never log in


def test_an_imported_hash_too_costly_for_every_login_is_refused() -> None:
    bcrypt_hash = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    argon = Argon2(memory_cost=64, time_cost=1, parallelism=1).hash("pw")
    costly = [
        bcrypt_hash[:4] + "17" + bcrypt_hash[6:],
        argon.replace("m=64", "m=2097152"),
        argon.replace("t=1", "t=11"),
        argon.replace("m=64,t=1,p=1", "m=1024,t=1,p=17"),
    ]
    for hashed in costly:
        problem = hash_problem(hashed)
        assert problem is not None and "too slow" in problem, hashed
    assert hash_problem(bcrypt_hash[:4] + "16" + bcrypt_hash[6:]) is None


def test_import_hash_names_the_field_and_stores_nothing(world: World) -> None:
    user = world.user("legacy@example.com", password=None)
    passwords = world.identity.passwords
    with world.services.storage.transaction() as tx, pytest.raises(RequestRejectedError) as bad:
        passwords.import_hash(tx, user, "$2b$04$abc", now=world.clock.now())
    assert str(bad.value).startswith("passwordHash: a bcrypt hash must be")
    with world.services.storage.transaction() as tx:
        assert tx.passwords.get(user.tenant_id, user.id) is None


def test_basic_auth_users_with_a_malformed_hash_are_refused_with_their_key_path() -> None:
    text = (
        f"security:\n  pepper: {'p' * 40}\n  authentication:\n    basicAuth:\n      users:\n"
        "        - {username: legacy@example.com, passwordHash: '$2b$04$abc'}\n"
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(text, source="test", environ={})
    [issue] = refused.value.issues
    assert issue.path == "security.authentication.basicAuth.users[0].passwordHash"
    assert issue.message.startswith("a bcrypt hash must be")
    assert "$2b$04$abc" not in str(issue)


def test_user_create_with_a_malformed_hash_is_one_line_and_no_user(tmp_path: Path) -> None:
    bastion(["init"], cwd=tmp_path)
    refused = bastion(
        ["user", "create", "legacy@example.com", "--password-hash", "$2b$04$abc"],
        cwd=tmp_path,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: passwordHash: a bcrypt hash must be $2a$, $2b$ or $2y$"
    )
    assert len(refused.stderr.strip().splitlines()) == 1
    shown = bastion(["user", "show", "legacy@example.com"], cwd=tmp_path, check=False)
    assert shown.stderr.strip() == "error: no user 'legacy@example.com' in tenant 'default'"


def test_a_password_with_a_lone_surrogate_is_refused_by_the_policy() -> None:
    problems = policy_violations("Correct-Horse-9-\ud800-Battery", PasswordPolicy(), common=set())
    assert problems == ["must be text: it holds a lone UTF-16 surrogate"]
