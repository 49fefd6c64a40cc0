"""Hostile client input on the authentication paths: lone surrogates, bearers of deeply nested
JSON, a non-ASCII Basic header. Each is an ordinary refusal (401, invalid_grant, invalid_client,
RFC 7009's 200), never a 500, and a login attempt is still counted and audited."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from starlette.testclient import TestClient

from bastion.core.model import AuditQuery, PrincipalKind
from bastion.crypto.jwt import InvalidJwtError, split_compact, unverified_claims
from bastion.crypto.keys import CacheKeyer, KeyedHasher
from bastion.crypto.passwords import PasswordHasher
from bastion.errors import AuthenticationError
from bastion.gateway.app import build_app
from bastion.services.exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE
from bastion.services.login import LoginRequest
from tests.identity.conftest import ACTOR, PASSWORD, PEPPER, World, make_world

LOGIN = "/_bastion/login"
JSON = {"content-type": "application/json"}
LONE = "\ud800"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, TestClient]]:
    world = make_world(f"sqlite:///{tmp_path}/b.db")
    app = build_app(world.services.config, services=world.services)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield world, client
    world.services.identity.close()
    world.services.storage.close()


def failures(world: World) -> list[str]:
    with world.services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action="login.failure", limit=100))
    return sorted(str(e.details.get("reason")) for e in events)


def answer(response: Any) -> tuple[int, dict[str, Any]]:
    body = response.json()
    body.pop("requestId", None)
    return response.status_code, body


# 1. Lone surrogates: valid JSON ("\ud800"), no UTF-8 form.


def test_lone_surrogate_password_is_an_audited_failure_not_a_500(
    served: tuple[World, TestClient],
) -> None:
    world, client = served
    world.user("vic@example.com")
    ordinary = client.post(LOGIN, json={"username": "ghost@example.com", "password": "nope-1A!"})
    raw = b'{"username": "vic@example.com", "password": "\\ud800"}'
    answers = [answer(client.post(LOGIN, content=raw, headers=JSON)) for _ in range(5)]
    assert answers == [answer(ordinary)] * 5
    assert answers[0][0] == 401
    # Counted like any wrong password, and every one of them audited.
    assert failures(world) == ["unknown_user"] + ["wrong_password"] * 5
    locked = client.post(LOGIN, json={"username": "vic@example.com", "password": PASSWORD})
    assert answer(locked) == answer(ordinary)
    assert failures(world).count("locked_account") == 1


def test_lone_surrogate_username_or_tenant_is_an_unknown_user_not_a_500(
    served: tuple[World, TestClient],
) -> None:
    world, client = served
    for raw in (
        b'{"username": "\\udc80vic@example.com", "password": "x"}',
        b'{"username": "vic@example.com", "password": "x", "tenant": "\\ud800"}',
        b'{"username": "\\ud800", "password": "\\udfff", "newPassword": "\\ud800"}',
    ):
        response = client.post(LOGIN, content=raw, headers=JSON)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_credentials"
    assert failures(world) == ["unknown_user"] * 3


def test_login_service_counts_and_audits_lone_surrogates_from_any_caller(
    sql_world: World,
) -> None:
    """The gateway replaces lone surrogates; the service must not depend on it."""
    sql_world.user("una@example.com")
    logins = sql_world.identity.logins
    for username, password in (
        ("una@example.com", LONE),
        ("nobody" + LONE, "x"),
        (LONE, LONE),
    ):
        request = LoginRequest("default", username, password, "192.0.2.1", None)
        with pytest.raises(AuthenticationError):
            logins.login(request)
    assert failures(sql_world) == ["unknown_user", "unknown_user", "wrong_password"]


def test_lone_surrogate_refresh_token_on_logout_is_204_not_500(
    served: tuple[World, TestClient],
) -> None:
    _, client = served
    raw = b'{"refreshToken": "brt_\\ud800"}'
    assert client.post("/_bastion/logout", content=raw, headers=JSON).status_code == 204


def test_hashes_take_lone_surrogates_without_raising_or_colliding() -> None:
    keyed = KeyedHasher(PEPPER.encode())
    assert keyed.digest(LONE) != keyed.digest("\ufffd")
    assert not keyed.matches(LONE, keyed.digest("\ufffd"))
    # Every other string is hashed exactly as before: stored digests stay valid.
    expected = hmac.new(PEPPER.encode(), "brt_é€😀".encode(), "sha256").digest()
    assert keyed.digest("brt_é€😀") == expected
    cache = CacheKeyer()
    assert cache.key(LONE) != cache.key("\ufffd")

    hasher = PasswordHasher(memory_kib=256, time_cost=1)
    stored = hasher.hash("pw" + LONE)
    assert hasher.verify(stored, "pw" + LONE)
    assert not hasher.verify(stored, "pw\ufffd")
    assert not hasher.verify(hasher.hash(PASSWORD), LONE)
    hasher.verify_dummy(LONE)
    legacy = bcrypt.hashpw(b"legacy", bcrypt.gensalt(4)).decode()
    assert not hasher.verify(legacy, LONE)
    # A password hashed before the change still verifies (plain UTF-8, same bytes).
    assert hasher.verify(hasher._argon2.hash("plain-é"), "plain-é")


# 2. Bearers whose JSON nests deeper than any token does.


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


DEEP_HEADER = ".".join(
    [_segment(b'{"alg":' + b"[" * 1100 + b"]" * 1100 + b"}"), _segment(b'{"iss":"x"}'), "eA"]
)
DEEP_PAYLOAD = ".".join([_segment(b'{"alg":"RS256"}'), _segment(b"[" * 1100 + b"]" * 1100), "eA"])


@pytest.mark.parametrize("token", [DEEP_HEADER, DEEP_PAYLOAD], ids=["header", "payload"])
def test_deeply_nested_jwt_is_malformed_not_a_recursion_error(token: str) -> None:
    with pytest.raises(InvalidJwtError) as raised:
        unverified_claims(token)
    assert raised.value.reason == "malformed_token"


def test_ordinary_nesting_in_a_jwt_is_still_read() -> None:
    nested = b'{"sub":"u","act":{"sub":"a","act":{"sub":"b"}},"cnf":{"x":[[1]]}}'
    token = ".".join([_segment(b'{"alg":"ES256"}'), _segment(nested), "eA"])
    assert split_compact(token)[0] == {"alg": "ES256"}
    assert unverified_claims(token)["act"]["act"] == {"sub": "b"}


@pytest.mark.parametrize("token", [DEEP_HEADER, DEEP_PAYLOAD], ids=["header", "payload"])
def test_deeply_nested_jwt_is_401_not_500(served: tuple[World, TestClient], token: str) -> None:
    world, client = served
    bearer = {"Authorization": f"Bearer {token}"}
    whoami = client.get("/_bastion/api/v1/whoami", headers=bearer)
    assert whoami.status_code == 401, whoami.text
    proxied = client.get("/some/proxied/path", headers=bearer)
    assert proxied.status_code == 401, proxied.text
    # RFC 7009 section 2.2: "The authorization server responds with HTTP status code 200 if
    # the token has been revoked successfully or if the client submitted an invalid token."
    assert client.post("/_bastion/oauth/revoke", data={"token": token}).status_code == 200

    world.identity.directory.create(
        tenant_name="default", kind=PrincipalKind.SERVICE_ACCOUNT, name="bot", actor=ACTOR
    )
    key = world.services.api_keys.create(
        tenant_name="default",
        owner_name="bot",
        name="bot-key",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    exchanged = client.post(
        "/_bastion/oauth/token",
        data={
            "grant_type": GRANT_TYPE,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        },
        auth=("bot", key.secret),
    )
    assert (exchanged.status_code, exchanged.json()) == (400, {"error": "invalid_grant"})


# 3. A Basic header of Latin-1 characters (Starlette reads header bytes as Latin-1).


def test_non_ascii_basic_header_is_invalid_client(served: tuple[World, TestClient]) -> None:
    _, client = served
    response = client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": b"Basic \xe9\xe9"},
    )
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


# 4. Imported bcrypt hashes: one bcrypt check per failed login unless NFKC changes the password.


def test_failed_login_of_a_bcrypt_user_runs_bcrypt_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = world.user("bea@example.com", password=None)
    imported = bcrypt.hashpw("ﬁne legacy".encode(), bcrypt.gensalt(4)).decode()
    with world.services.storage.transaction() as tx:
        world.identity.passwords.import_hash(tx, user, imported, now=world.clock.now())
    checks: list[bytes] = []
    checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checks.append(password)
        return checkpw(password, hashed)

    monkeypatch.setattr("bastion.crypto.passwords.bcrypt.checkpw", counting)
    logins = world.identity.logins
    with pytest.raises(AuthenticationError):
        logins.login(LoginRequest("default", "bea@example.com", "wrong", "192.0.2.2", None))
    assert len(checks) == 1
    # Typed with a ligature that NFKC unfolds: the as-typed form is tried too, and matches.
    checks.clear()
    done = logins.login(LoginRequest("default", "bea@example.com", "ﬁne legacy", "192.0.2.2", None))
    assert done.principal.name == "bea@example.com"
    assert checks == [b"fine legacy", "ﬁne legacy".encode()]
