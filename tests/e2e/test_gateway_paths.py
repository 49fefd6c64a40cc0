"""The path battery and header spoofing through the reverse proxy, against an echoing upstream.

Requests are sent as raw bytes so that no client library normalises the path first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.gwstack import GatewayStack, body_json, gateway_stack, raw_get

pytestmark = pytest.mark.e2e

# Every one of these must be refused for a principal that may not use /admin (limited key).
PATH_BATTERY = [
    b"/public/../admin",
    b"/public/./admin",
    b"/public/%2e%2e/admin",
    b"/public/%2E%2E/admin",
    b"/public%2fadmin",
    b"/public/..%2fadmin",
    b"/public%5c..%5cadmin",
    b"/public/%252e%252e/admin",
    b"//admin",
    b"/public//admin",
    b"/admin;x=1",
    b"/public;/../admin",
    b"/admin/..;/x",
    b"/Admin",
    b"/ADMIN/users",
    b"/admin%20",
    b"/admin%09",
    b"/admin?/public",
    b"/admin#/public",
    b"/admin%00",
    b"/admin%0d%0aX-Injected:%201",
    b"/admin%1b",
    b"/admin%7f",
    b"/admin%",
    b"/admin%zz",
    b"/public%",
    b"/%61dmin",
    b"/admin/",
    b"/admin/users",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-paths")) as running:
        yield running


def auth(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", b"Bearer " + key.encode())]


def test_limited_key_reaches_allowed_route_and_public_path(stack: GatewayStack) -> None:
    status, _ = raw_get(stack.port, b"/api/patterns", auth(stack.limited_key))
    assert status == 200
    status, _ = raw_get(stack.port, b"/public/readme")
    assert status == 200


@pytest.mark.parametrize("target", PATH_BATTERY, ids=lambda t: t.decode("latin-1"))
def test_path_battery_never_allows_admin(stack: GatewayStack, target: bytes) -> None:
    before = stack.upstream_count()
    status, response = raw_get(stack.port, target, auth(stack.limited_key))
    assert status in (400, 403, 404), response[:300]
    assert stack.upstream_count() == before


def test_admin_key_may_use_admin_route(stack: GatewayStack) -> None:
    status, response = raw_get(stack.port, b"/admin/users", auth(stack.admin_key))
    assert status == 200
    echoed = body_json(response)
    assert echoed["rawPath"] == "/admin/users"


def test_raw_control_character_in_request_line_refused(stack: GatewayStack) -> None:
    status, _ = raw_get(stack.port, b"/admin\x01", auth(stack.limited_key))
    assert status in (0, 400)


def test_non_canonical_path_is_audited(stack: GatewayStack) -> None:
    status, response = raw_get(stack.port, b"/public/%2e%2e/admin", auth(stack.limited_key))
    assert status == 400
    body = body_json(response)
    [event] = stack.audit_for(body["requestId"])
    assert event["action"] == "request.reject"
    assert event["details"]["reason"] == "bad_request"


SPOOFED = [
    b"X-Bastion-Principal",
    b"x-bastion-principal",
    b"X-BASTION-PRINCIPAL",
    b"X_Bastion_Principal",
    b"X-Bastion-Tenant",
    b"X_BASTION_TENANT",
    b"X-Bastion-Roles",
    b"X-Bastion-Identity",
    b"X-Bastion-Request-Id",
    b"X-Forwarded-User",
    b"X_Forwarded_User",
    b"X-Forwarded-Email",
    b"Remote-User",
    b"Remote_User",
    b"REMOTE-USER",
    b"X-Remote-User",
    b"X-Auth-Request-User",
    b"X-Auth-Request-Email",
    b"X-User",
    b"X-WebAuth-User",
]


@pytest.mark.parametrize("name", SPOOFED, ids=lambda n: n.decode())
def test_spoofed_identity_header_never_reaches_upstream(stack: GatewayStack, name: bytes) -> None:
    headers = [*auth(stack.limited_key), (name, b"mallory"), (name, b"mallory-again")]
    status, response = raw_get(stack.port, b"/api/patterns", headers)
    assert status == 200
    echoed = body_json(response)
    assert not any("mallory" in value for _, value in echoed["headers"])
    principals = [v for k, v in echoed["headers"] if k == "x-bastion-principal"]
    assert principals == ["admin@example.com"]


def test_identity_header_with_trailing_space_never_reaches_upstream(stack: GatewayStack) -> None:
    headers = [*auth(stack.limited_key), (b"X-Bastion-Principal ", b"mallory")]
    status, response = raw_get(stack.port, b"/api/patterns", headers)
    if status == 200:
        echoed = body_json(response)
        assert not any("mallory" in value for _, value in echoed["headers"])
    else:
        assert status == 400  # the HTTP parser refuses the malformed header name


def test_public_path_strips_spoofed_identity(stack: GatewayStack) -> None:
    status, response = raw_get(stack.port, b"/public/x", [(b"X-Bastion-Principal", b"mallory")])
    assert status == 200
    echoed = body_json(response)
    assert not any("mallory" in value for _, value in echoed["headers"])


def test_forwarded_for_from_untrusted_peer_is_ignored(stack: GatewayStack) -> None:
    response = stack.get(
        "/api/patterns", key=stack.limited_key, headers={"X-Forwarded-For": "6.6.6.6"}
    )
    assert response.status_code == 200
    forwarded = [v for k, v in response.json()["headers"] if k == "x-forwarded-for"]
    assert forwarded == ["127.0.0.1"]
    [event] = stack.audit_for(response.headers["x-bastion-request-id"])
    assert event["actor"]["ip"] == "127.0.0.1"


def test_original_uri_from_untrusted_peer_is_ignored(stack: GatewayStack) -> None:
    response = stack.get(
        "/_bastion/verify",
        key=stack.limited_key,
        headers={"X-Original-URI": "/api/patterns", "X-Original-Method": "GET"},
    )
    assert response.status_code == 403
    assert response.headers["x-bastion-deny"] == "forbidden"


def test_bastion_credential_not_forwarded(stack: GatewayStack, tmp_path: Path) -> None:
    response = stack.get("/api/patterns", headers={"X-API-Key": stack.limited_key})
    assert response.status_code == 200
    assert not any(stack.limited_key in v for _, v in response.json()["headers"])


def test_upstream_sees_forwarded_headers_set_by_bastion(stack: GatewayStack) -> None:
    response = httpx.get(
        stack.base + "/api/patterns?x=1",
        headers={"Authorization": f"Bearer {stack.limited_key}", "X-Forwarded-Proto": "https"},
        timeout=10,
    )
    headers = dict(response.json()["headers"])
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{stack.port}"
    assert response.json()["query"] == "x=1"
