"""A NUL character (U+0000) in what a client sends: PostgreSQL can neither store nor compare
text holding one, so each such input used to be a 503 there (storage or audit "unavailable"),
and a client id or login name holding one made an authentication failure that went unaudited.
Now, on SQLite and PostgreSQL alike: the admin API refuses it with a 400 naming where it was,
and the authentication endpoints treat it as a name that matches nothing (401, audited)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.problem_checks import problem

API = "/_bastion/api/v1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_gateway(request: pytest.FixtureRequest, gateway: GatewayFactory) -> Iterator[Gateway]:
    extra = None
    if request.param == "postgres":
        extra = {"storage": {"url": request.getfixturevalue("clean_postgres_url")}}

    with gateway(extra) as gw:
        yield gw


@pytest.mark.parametrize(
    "query",
    ["users?after=a%00", "groups?after=%00", "apikeys?after=%00", "audit/events?actor=a%00"],
)
def test_a_nul_in_a_query_parameter_is_400_naming_it(open_gateway: Gateway, query: str) -> None:
    gw = open_gateway
    answer = gw.client.get(f"{API}/{query}", headers=gw.auth())
    name = query.split("?")[1].split("=")[0]
    assert problem(answer, 400, "bad_request")["detail"] == (
        f"query parameter {name} must not hold a NUL character"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/users/admin@example.com", {"displayName": "a\x00b"}, "displayName"),
        ("POST", "/groups", {"name": "ops", "displayName": "\x00"}, "displayName"),
        (
            "POST",
            "/bindings",
            {"subject": {"type": "user", "name": "a\x00"}, "role": "admin"},
            "subject",
        ),
        (
            "POST",
            "/resource-rules",
            {"resource": "patterns/a\x00", "allowedRoles": ["admin"]},
            "resource",
        ),
        (
            "POST",
            "/authz/check",
            {"principal": "a\x00", "action": "read", "resource": "p/x"},
            "principal",
        ),
        ("POST", "/apikeys", {"name": "ci", "scopes": ["patterns\x00:read"]}, "scopes"),
    ],
)
def test_a_nul_in_a_body_is_400_naming_the_field_and_changes_nothing(
    open_gateway: Gateway, method: str, path: str, body: dict[str, object], field: str
) -> None:
    gw = open_gateway
    answer = gw.client.request(method, f"{API}{path}", headers=gw.auth(), json=body)
    assert problem(answer, 400, "bad_request")["detail"] == (
        f"{field}: must not hold a NUL character"
    )
    shown = gw.client.get(f"{API}/users/admin@example.com", headers=gw.auth()).json()
    assert shown["displayName"] == "Administrator"
    assert gw.client.get(f"{API}/groups", headers=gw.auth()).json() == []


def failures(gw: Gateway, action: str) -> list[dict[str, object]]:
    answer = gw.client.get(f"{API}/audit/events?action={action}", headers=gw.auth())
    return [e for e in answer.json()["events"] if e["outcome"] != "success"]


def test_a_login_name_holding_a_nul_fails_like_any_unknown_one_and_is_audited(
    open_gateway: Gateway,
) -> None:
    gw = open_gateway
    unknown = gw.client.post("/_bastion/login", json={"username": "nobody", "password": "x"})
    for sent in ({"username": "admin\x00@example.com"}, {"tenant": "default\x00"}):
        answer = gw.client.post(
            "/_bastion/login", json={"username": "admin@example.com", "password": "x", **sent}
        )
        assert answer.status_code == unknown.status_code == 401
        assert answer.json()["code"] == unknown.json()["code"]
    names = [event["resource"]["id"] for event in failures(gw, "login.failure")]
    assert names == ["nobody", "admin\ufffd@example.com", "admin@example.com"]


def test_an_oauth_client_id_holding_a_nul_is_an_unknown_client_and_is_audited(
    open_gateway: Gateway,
) -> None:
    gw = open_gateway
    answer = gw.client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "svc\x00", "client_secret": "x"},
    )
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    assert [e["actor"]["id"] for e in failures(gw, "oauth.client")] == ["svc\ufffd"]
