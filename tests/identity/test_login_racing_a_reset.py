"""A login that verified the old password while an administrator reset it (or disabled the
user) never keeps a session. Before, the login's last step wrote without looking: a reset
committed while the hash was being checked was undone by the login's rehash of a bcrypt hash
(the old password came back), and the session the login then started, in a transaction of its
own after the reset had ended every session it could see, survived the reset."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import bcrypt
import pytest

from bastion.core.model import AuditQuery, PrincipalKind
from bastion.errors import AuthenticationError
from bastion.services.login import LoginRequest
from tests.identity.conftest import ACTOR, World, make_world
from tests.identity.test_password_ends_sessions import NEW_PASSWORD, _refusal, _set_password
from tests.identity.test_refresh_family_race import run_queued, shared_url
from tests.identity.test_tokens import whois

__all__ = ["shared_url"]  # the fixture, on SQLite and PostgreSQL

OLD_PASSWORD = "Stolen-Horse-4-Battery"
BOB: dict[str, Any] = {
    "tenant_name": "default",
    "kind": PrincipalKind.USER,
    "name": "bob@example.com",
}


def _login(world: World, password: str) -> Any:
    request = LoginRequest("default", "bob@example.com", password, "192.0.2.1", None)
    world.identity.tokens.warm()  # as the login endpoint does: keys loaded before its work
    return world.identity.logins.login(request, start=world.identity.tokens.start_session)


def _bcrypt_user(world: World) -> None:
    """Bob, with a bcrypt hash imported from elsewhere: a login upgrades it to Argon2id."""
    world.user("bob@example.com", password=None)
    legacy = bcrypt.hashpw(OLD_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    with world.services.storage.transaction() as tx:
        bob = tx.principals.get_by_name(world.tenant.id, "bob@example.com")
        world.identity.passwords.import_hash(tx, bob, legacy, now=world.clock.now())


def test_a_reset_committed_while_the_old_password_was_checked_refuses_the_login(
    any_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = any_world
    _bcrypt_user(world)
    logins = world.identity.logins
    check = logins._check

    def check_then_reset(*args: Any) -> Any:
        checked = check(*args)
        _set_password(world, "bob@example.com", NEW_PASSWORD)  # commits before the login ends
        return checked

    monkeypatch.setattr(logins, "_check", check_then_reset)
    with pytest.raises(AuthenticationError):
        _login(world, OLD_PASSWORD)
    monkeypatch.undo()

    with world.services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="login.failure"))
        issued = tx.audit.query(AuditQuery(action="token.issue"))
    assert event.details["reason"] == "password_changed"
    assert "rehashed" not in event.details and not issued
    # The reset stands: the new password logs in, the old one does not.
    assert _login(world, NEW_PASSWORD).tokens is not None
    with pytest.raises(AuthenticationError):
        _login(world, OLD_PASSWORD)


@pytest.fixture
def two_replicas(shared_url: str) -> Iterator[list[World]]:
    first = make_world(shared_url)
    worlds = [first, make_world(shared_url, clock=first.clock)]
    yield worlds
    for world in worlds:
        world.services.identity.close()
        world.services.storage.close()


def _reset(resetter: World, tenant_id: str) -> int:
    with resetter.services.storage.transaction() as tx:
        bob = tx.principals.get_by_name(tenant_id, "bob@example.com")
        now = resetter.clock.now()
        ended = resetter.identity.passwords.set_password(tx, bob, NEW_PASSWORD, now=now)
    return ended.families


def _disable(resetter: World, tenant_id: str) -> int:
    directory = resetter.identity.directory
    directory.update(**BOB, disabled=True, actor=ACTOR)
    directory.update(**BOB, disabled=False, actor=ACTOR)  # and back: the session stays ended
    with resetter.services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="user.disable"))
    ended: int = event.details["sessionsEnded"]
    return ended


@pytest.mark.parametrize("change", [_reset, _disable], ids=["password-reset", "disable"])
def test_a_change_committing_after_the_login_checked_the_password_ends_its_session(
    two_replicas: list[World],
    shared_url: str,
    change: Callable[[World, str], int],
) -> None:
    """One replica's login has checked the password and stored its session, and stops before
    its commit; the other replica resets the password (or disables the user) meanwhile. On
    PostgreSQL the change waits for the login's lock on the password row and then sees the new
    session; on SQLite the two run one after the other. Either way the login's session ends
    with the change."""
    world, changer = two_replicas
    world.user("bob@example.com", password=OLD_PASSWORD)
    world.identity.tokens.warm()
    started, release = threading.Event(), threading.Event()
    start = world.identity.tokens.start_session

    def start_then_wait(*args: Any) -> Any:
        issued = start(*args)
        started.set()  # the session is in the login's transaction, not yet committed
        assert release.wait(60)
        return issued

    outcome: dict[str, Any] = {}

    def login() -> None:
        request = LoginRequest("default", "bob@example.com", OLD_PASSWORD, "192.0.2.1", None)
        outcome["login"] = world.identity.logins.login(request, start=start_then_wait)

    def change_it() -> None:
        outcome["ended"] = change(changer, world.tenant.id)

    run_queued(login, change_it, paused=started, release=release, url=shared_url)
    tokens = outcome["login"].tokens
    assert outcome["ended"] == 1
    assert _refusal(whois, world, tokens.access_token) == "revoked_token"
    refresh = world.identity.tokens.refresh
    assert _refusal(refresh, tokens.refresh_token, scope=None) == "revoked_refresh_token"


def test_a_login_that_checked_the_password_of_a_user_disabled_meanwhile_is_refused(
    any_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = any_world
    world.user("bob@example.com", password=OLD_PASSWORD)
    logins = world.identity.logins
    check = logins._check

    def check_then_disable(*args: Any) -> Any:
        checked = check(*args)
        world.identity.directory.update(**BOB, disabled=True, actor=ACTOR)
        return checked

    monkeypatch.setattr(logins, "_check", check_then_disable)
    with pytest.raises(AuthenticationError):
        _login(world, OLD_PASSWORD)
    with world.services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="login.failure"))
        issued = tx.audit.query(AuditQuery(action="token.issue"))
    assert event.details["reason"] == "disabled_principal" and not issued
