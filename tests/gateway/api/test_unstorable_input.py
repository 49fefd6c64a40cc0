"""Text PostgreSQL cannot store or index, in what a client sends: a NUL character (U+0000),
which it can neither bind nor compare, and a name thousands of characters long, which its
B-tree index cannot hold (about 2,700 bytes a row; SQLite has no such limit). Each used to be a
503 there (storage or audit "unavailable"), and a client id or login name holding one made an
authentication failure that went unaudited. Now, on SQLite and PostgreSQL alike: the admin API
refuses a NUL with a 400 naming where it was, and the authentication endpoints treat either as
a name that matches nothing (401, audited)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.problem_checks import problem

API = "/_bastion/api/v1"


# A route whose resource id is a path segment the client chooses.
BY_ID = {
    "method": "GET",
    "path": "/api/patterns/{id}",
    "resource": "patterns",
    "id": "{id}",
    "action": "read",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_gateway(request: pytest.FixtureRequest, gateway: GatewayFactory) -> Iterator[Gateway]:
    extra: dict[str, Any] = {"gateway": {"routes": [BY_ID]}}
    if request.param == "postgres":
        extra["storage"] = {"url": request.getfixturevalue("clean_postgres_url")}
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


def random_text(length: int) -> str:
    """Text PostgreSQL cannot compress under its index limit (repeated letters it can)."""
    return secrets.token_hex(length // 2)


def test_a_login_name_or_tenant_too_long_to_index_fails_like_any_unknown_one_and_is_audited(
    open_gateway: Gateway,
) -> None:
    gw = open_gateway
    long_name, long_tenant = random_text(9000), random_text(9000)
    for sent in ({"username": long_name}, {"username": "a", "tenant": long_tenant}):
        answer = gw.client.post("/_bastion/login", json={"password": "x", **sent})
        assert (answer.status_code, answer.json()["code"]) == (401, "invalid_credentials")
    events = failures(gw, "login.failure")
    # Cut to the longest a name can be, and marked ("…", in canonical form "..."): no user's.
    assert [e["resource"]["id"] for e in events] == [long_name[:254] + "...", "a"]
    everywhere = gw.client.get(f"{API}/audit/events?limit=1000", headers=gw.auth()).json()
    assert long_tenant[:254] + "..." in {e["tenant"] for e in everywhere["events"]}


def test_an_oauth_client_id_too_long_to_index_is_an_unknown_client_and_is_audited(
    open_gateway: Gateway,
) -> None:
    gw = open_gateway
    client_id = random_text(9000)
    answer = gw.client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
    )
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    # The event keeps the whole id; a query by the whole id finds it.
    found = gw.client.get(
        f"{API}/audit/events", params={"actor": client_id}, headers=gw.auth()
    ).json()["events"]
    assert [e["actor"]["id"] for e in found] == [client_id]


def test_a_proxied_request_whose_resource_id_is_too_long_to_index_is_audited(
    open_gateway: Gateway,
) -> None:
    """The id comes from the path: 7,000 characters fit in a request head. Its event used to
    fail to be written on PostgreSQL, so the request was refused (503 audit_unavailable), and
    with it every other request whose event was in the same batch."""
    gw = open_gateway
    ident = random_text(7000)
    answer = gw.client.get(f"/api/patterns/{ident}", headers=gw.auth())
    assert answer.json()["code"] == "upstream_unavailable"  # no upstream: audited, then 502
    found = gw.client.get(
        f"{API}/audit/events", params={"resource": f"patterns/{ident}"}, headers=gw.auth()
    ).json()["events"]
    assert [e["resource"] for e in found] == [{"type": "patterns", "id": ident}]
