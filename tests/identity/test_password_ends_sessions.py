"""Setting a user's password ends the sessions started before it: their refresh tokens stop
rotating and the access tokens issued from them stop working, on the next request and in
every replica, whichever way the password is set (the service, the admin API, the CLI, a
login's ``newPassword``). The login that sets ``newPassword`` itself gets a working session.
Before, a thief's session survived an administrator's reset of the stolen password.
Disabling a user ends its sessions the same way, for good."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.config import load_config
from bastion.core.model import AuditQuery, PrincipalKind
from bastion.errors import AuthenticationError
from bastion.services.login import LoginRequest
from bastion.wiring import build_services
from tests.authz.api_world import API, api_world
from tests.cli.test_cli_bad_input import run_with_stdin
from tests.e2e.procs import bastion
from tests.identity.conftest import PASSWORD, World, make_world
from tests.identity.test_tokens import login_tokens, session_for, whois

NEW_PASSWORD = "Another-Horse-7-Stapler"
REFUSED_WHILE_DISABLED = {"revoked_token", "disabled_principal"}


def _refusal(call: object, *args: object, **kw: object) -> str:
    with pytest.raises(AuthenticationError) as refused:
        call(*args, **kw)  # type: ignore[operator]
    return refused.value.reason


def _set_password(world: World, name: str, password: str) -> Any:
    """As the admin API sets one (which announces nothing: the epoch in the database is what
    every replica, this one included, reads on the next request)."""
    with world.services.storage.transaction() as tx:
        user = tx.principals.get_by_name(world.tenant.id, name)
        return world.identity.passwords.set_password(tx, user, password, now=world.clock.now())


def test_setting_a_password_ends_every_session_of_the_user(world: World) -> None:
    world.user("bob@example.com")
    sessions = [login_tokens(world, "bob@example.com") for _ in range(2)]
    rotated = world.identity.tokens.refresh(str(sessions[1]["refresh_token"]), scope=None)
    others = login_tokens(world)  # another user's session is not touched
    assert whois(world, str(sessions[0]["access_token"])).principal.name == "bob@example.com"

    ended = _set_password(world, "bob@example.com", NEW_PASSWORD)

    refresh = world.identity.tokens.refresh
    assert _refusal(refresh, str(sessions[0]["refresh_token"]), scope=None) == (
        "revoked_refresh_token"
    )
    assert _refusal(refresh, rotated.refresh_token, scope=None) == "revoked_refresh_token"
    for token in (sessions[0]["access_token"], sessions[1]["access_token"], rotated.access_token):
        assert _refusal(whois, world, str(token)) == "revoked_token"
    assert whois(world, str(others["access_token"])).principal.name == "admin@example.com"
    assert refresh(str(others["refresh_token"]), scope=None).refresh_token
    assert ended.families == 2  # for the audit event of the change (`sessionsEnded`)


def test_a_password_set_on_one_replica_ends_sessions_another_replica_verified(
    sql_world: World,
) -> None:
    replica = make_world(sql_world.services.config.storage.url, clock=sql_world.clock)
    try:
        sql_world.user("bob@example.com")
        session = login_tokens(sql_world, "bob@example.com")
        assert whois(replica, str(session["access_token"])).principal.name == "bob@example.com"
        _set_password(sql_world, "bob@example.com", NEW_PASSWORD)
        assert _refusal(whois, replica, str(session["access_token"])) == "revoked_token"
    finally:
        replica.services.identity.close()
        replica.services.storage.close()


def test_admin_api_password_reset_ends_the_users_sessions(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        client, admin = world.client, world.headers("default")
        target = API + "/users/admin@example.com/password"
        assert client.put(target, headers=admin, json={"password": PASSWORD}).status_code == 204
        login = {"username": "admin@example.com", "password": PASSWORD}
        tokens = client.post("/_bastion/login", json=login).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert client.get(API + "/whoami", headers=bearer).status_code == 200

        reset = {"password": NEW_PASSWORD}
        assert client.put(target, headers=admin, json=reset).status_code == 204

        assert client.get(API + "/whoami", headers=bearer).status_code == 401
        grant = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        assert client.post("/_bastion/oauth/token", data=grant).status_code == 400
        with world.services.storage.transaction() as tx:
            events = tx.audit.query(AuditQuery(action="user.password.set"))
        assert sorted(e.details["sessionsEnded"] for e in events) == [0, 1]  # the set, the reset


def test_login_with_a_new_password_ends_the_old_sessions_and_starts_a_working_one(
    world: World,
) -> None:
    world.user("bob@example.com")
    old = login_tokens(world, "bob@example.com")
    request = LoginRequest(
        tenant="default",
        username="bob@example.com",
        password=PASSWORD,
        client_ip="192.0.2.1",
        user_agent=None,
        new_password=NEW_PASSWORD,
    )
    world.identity.tokens.warm()
    new = world.identity.logins.login(request, start=world.identity.tokens.start_session).tokens
    assert new is not None

    assert _refusal(whois, world, str(old["access_token"])) == "revoked_token"
    refresh = world.identity.tokens.refresh
    assert _refusal(refresh, str(old["refresh_token"]), scope=None) == "revoked_refresh_token"
    assert whois(world, new.access_token).principal.name == "bob@example.com"
    assert refresh(str(new.refresh_token), scope=None).access_token
    with world.services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="login.success", limit=1))
    assert event.details["sessionsEnded"] == 1


def test_cli_set_password_ends_the_users_sessions_and_audits_how_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bastion(["init"], cwd=tmp_path)
    monkeypatch.chdir(tmp_path)  # the configuration names ./bastion.db
    config = load_config(tmp_path / "bastion.yaml", environ={})
    services = build_services(config)
    try:
        identity = services.identity
        with services.storage.transaction() as tx:
            tenant = tx.tenants.get_by_name("default")
            admin = tx.principals.get_by_name(tenant.id, "admin@example.com")
            identity.passwords.set_password(tx, admin, PASSWORD, now=services.clock.now())
        session = session_for(services, admin, tenant)

        result = run_with_stdin(
            ["user", "set-password", "admin@example.com", "--password-stdin"],
            tmp_path,
            NEW_PASSWORD + "\n",
        )
        assert result.returncode == 0, result.stderr

        refresh = identity.tokens.refresh
        assert _refusal(refresh, session.refresh_token, scope=None) == "revoked_refresh_token"
        with services.storage.transaction() as tx:
            [event] = tx.audit.query(AuditQuery(action="user.password.set", limit=1))
        assert event.details["sessionsEnded"] == 1
    finally:
        services.identity.close()
        services.storage.close()


def test_disabling_a_user_ends_its_sessions_for_good(world: World) -> None:
    """Before, disabling only marked the refresh tokens: enabled again within the access-token
    lifetime, the user's old access tokens worked again (an attacker's stolen session came
    back with the account)."""
    world.user("bob@example.com")
    stolen = login_tokens(world, "bob@example.com")
    others = login_tokens(world)
    directory, admin = world.identity.directory, {"type": "user", "id": "admin@example.com"}
    update: dict[str, Any] = {
        "tenant_name": world.tenant.name,
        "kind": PrincipalKind.USER,
        "name": "bob@example.com",
    }

    directory.update(**update, disabled=True, actor=admin)
    assert _refusal(whois, world, str(stolen["access_token"])) in REFUSED_WHILE_DISABLED
    directory.update(**update, disabled=False, actor=admin)

    assert _refusal(whois, world, str(stolen["access_token"])) == "revoked_token"
    refresh = world.identity.tokens.refresh
    assert _refusal(refresh, str(stolen["refresh_token"]), scope=None) == "revoked_refresh_token"
    assert whois(world, str(login_tokens(world, "bob@example.com")["access_token"]))
    assert whois(world, str(others["access_token"])).principal.name == "admin@example.com"
    with world.services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action="user.disable"))
    assert [e.details["sessionsEnded"] for e in events] == [1]
