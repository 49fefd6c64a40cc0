"""Regressions found by fuzzing the admin API (schemathesis and hand probes against a real
`bastion serve`): bad input is a 4xx problem, never a 5xx, and the OpenAPI document lists the
statuses the API really answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.authz.api_world import API, ApiWorld, api_world

PROBLEM = "application/problem+json"
# Within the years 1 to 9999 as written, beyond them once in UTC.
AFTER_9999_IN_UTC = "9999-12-31T23:59:59-23:59"
BEFORE_YEAR_1_IN_UTC = "0001-01-01T00:00:00+23:59"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world(tmp_path) as built:
        yield built


def _expiring(world: ApiWorld, what: str, expires: str) -> tuple[str, dict[str, Any]]:
    if what == "apikey":
        return "/apikeys", {"name": "k", "scopes": ["patterns:read"], "expires": expires}
    if what == "binding":
        subject = {"type": "user", "name": "admin@example.com"}
        return "/bindings", {"subject": subject, "role": "viewer", "expires": expires}
    created = world.client.post(
        f"{API}/serviceaccounts", json={"name": "ci"}, headers=world.headers("default")
    )
    assert created.status_code == 201
    body = {"name": "c", "scopes": ["patterns:read"], "expires": expires}
    return "/serviceaccounts/ci/credentials", body


@pytest.mark.parametrize("expires", [AFTER_9999_IN_UTC, BEFORE_YEAR_1_IN_UTC])
@pytest.mark.parametrize("what", ["apikey", "binding", "serviceaccount credential"])
def test_expiry_out_of_range_in_utc_is_400_not_storage_503(
    world: ApiWorld, what: str, expires: str
) -> None:
    # POST /v1/bindings {"expires": "9999-12-31T23:59:59-23:59"} overflowed converting to UTC
    # in the store and answered 503 storage_unavailable.
    path, body = _expiring(world, what, expires)
    response = world.client.post(f"{API}{path}", json=body, headers=world.headers("default"))
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "expires: is out of range (the years 1 to 9999, in UTC)"


def test_expiry_with_an_offset_is_stored_and_answered_in_utc(world: ApiWorld) -> None:
    subject = {"type": "user", "name": "admin@example.com"}
    body = {"subject": subject, "role": "viewer", "expires": "2999-06-01T10:00:00+02:00"}
    response = world.client.post(f"{API}/bindings", json=body, headers=world.headers("default"))
    assert response.status_code == 201
    assert response.json()["expires"].startswith("2999-06-01T08:00:00")


def _operations(world: ApiWorld) -> Iterator[tuple[str, str, dict[str, Any]]]:
    document = world.client.get(f"{API[: -len('/v1')]}/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_openapi_documents_problem_answers_not_fastapis_422(world: ApiWorld) -> None:
    # Every operation documented 422 HTTPValidationError, which the API never answers (bad
    # input is 400 problem+json), and none of the 400/401/403/404/409 it does answer.
    for path, method, operation in _operations(world):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        for status in ("400", "401", "403", "default"):
            content = responses[status]["content"]
            assert list(content) == [PROBLEM], (method, path, status)
        if "{" in path:
            assert "404" in responses, (method, path)


def test_openapi_problem_schema_describes_a_real_error(world: ApiWorld) -> None:
    document = world.client.get(f"{API[: -len('/v1')]}/openapi.json").json()
    schema = document["components"]["schemas"]["Problem"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    response = world.client.get(f"{API}/groups/nobody", headers=world.headers("default"))
    assert response.status_code == 404
    assert "404" in document["paths"]["/v1/groups/{name}"]["get"]["responses"]
    body = response.json()
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])


@pytest.mark.parametrize("path", ["/v1/whoami/", "/v1/users/", "/v1/audit/events/?limit=1"])
def test_trailing_slash_is_404_not_a_redirect_to_the_clients_host(
    world: ApiWorld, path: str
) -> None:
    # GET /_bastion/api/v1/whoami/ with "Host: evil.example" answered 307 to
    # http://evil.example/v1/whoami: the client's host, and off the /_bastion/api mount.
    response = world.client.get(
        f"{API[: -len('/v1')]}{path}",
        headers={**world.headers("default"), "Host": "evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "location" not in response.headers


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_two_different_credentials_in_repeated_headers_are_401(
    world: ApiWorld, header: str
) -> None:
    # Two Authorization headers were read as the first alone (the framework's HTTPBearer), so
    # GET /v1/whoami answered 200 for a request the proxy pipeline refuses as ambiguous.
    def value(key: str) -> str:
        return f"Bearer {key}" if header == "Authorization" else key

    sent = [(header, value(world.keys["default"])), (header, value(world.keys["beta"]))]
    response = world.client.get(f"{API}/whoami", headers=sent)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


def test_the_same_credential_repeated_is_one_credential(world: ApiWorld) -> None:
    key = world.keys["default"]
    sent = [
        ("Authorization", f"Bearer {key}"),
        ("X-API-Key", key),
        ("Authorization", f"Bearer {key}"),
    ]
    response = world.client.get(f"{API}/whoami", headers=sent)
    assert response.status_code == 200
    assert response.json()["tenant"] == "default"
