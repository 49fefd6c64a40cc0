"""The path battery, header spoofing and the Host through the reverse proxy, against an echoing
upstream.

Requests are sent as raw bytes so that no client library normalises the path first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.gwstack import GatewayStack, body_json, gateway_stack, raw_get, raw_request

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
    b"/admin%3bx=1",
    b"/admin%3B/x",
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


def test_encoded_semicolon_in_an_allowed_route_is_400_never_a_parameter_upstream(
    stack: GatewayStack,
) -> None:
    """The upstream client would send ``%3B`` as ``;``: a Java upstream then serves ``secret``
    for a request bastion decided as the resource ``secret;x`` (a forbid on it would not match)."""
    before = stack.upstream_count()
    status, response = raw_get(stack.port, b"/api/patterns/secret%3Bx", auth(stack.limited_key))
    assert status == 400
    assert "encoded /, \\, ., % or ;" in body_json(response)["detail"]
    assert stack.upstream_count() == before


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
    # method and path overrides
    b"X-HTTP-Method-Override",
    b"x_http_method_override",
    b"X-HTTP-Method",
    b"X-Method-Override",
    b"X-Rewrite-URL",
    b"X-Original-URL",
    # client address
    b"True-Client-IP",
    b"CF-Connecting-IP",
    b"Fastly-Client-IP",
    b"X-Cluster-Client-IP",
    b"Client-IP",
    b"Forwarded",
    # client certificate
    b"X-Client-Cert",
    b"X-SSL-Client-Cert",
    b"X-SSL-Client-S-DN",
    b"X_SSL_Client_S_DN",
    b"SSL-Client-Verify",
    # identity set by other gateways and identity-aware proxies
    b"X-Auth-User",
    b"X-Authenticated-User",
    b"X-Authenticated-Userid",
    b"X-Consumer-ID",
    b"X-Userinfo",
    b"X-Proxy-User",
    b"X-MS-CLIENT-PRINCIPAL",
    b"X-MS-CLIENT-PRINCIPAL-NAME",
    b"x-ms-client-principal-id",
    b"X-Goog-Authenticated-User-Email",
    b"X-Amzn-Oidc-Identity",
    b"X-Amzn-Oidc-Data",
    b"Cf-Access-Authenticated-User-Email",
    b"Cf-Access-Jwt-Assertion",
]
# The ones that make the upstream act on another method or path than bastion authorised.
OVERRIDES = [b"X-HTTP-Method-Override", b"X-HTTP-Method", b"X-Method-Override"]
REWRITES = [b"X-Rewrite-URL", b"X-Original-URL"]


@pytest.mark.parametrize("name", SPOOFED, ids=lambda n: n.decode())
def test_spoofed_identity_header_never_reaches_upstream(stack: GatewayStack, name: bytes) -> None:
    headers = [*auth(stack.limited_key), (name, b"mallory"), (name, b"mallory-again")]
    status, response = raw_get(stack.port, b"/api/patterns", headers)
    assert status == 200
    echoed = body_json(response)
    assert not any("mallory" in value for _, value in echoed["headers"])
    principals = [v for k, v in echoed["headers"] if k == "x-bastion-principal"]
    assert principals == ["admin@example.com"]


@pytest.mark.parametrize(
    "name", [b"X-Bastion-Principal ", b"X-HTTP-Method-Override ", b"True-Client-IP "]
)
def test_reserved_header_with_trailing_space_never_reaches_upstream(
    stack: GatewayStack, name: bytes
) -> None:
    headers = [*auth(stack.limited_key), (name, b"mallory")]
    status, response = raw_get(stack.port, b"/api/patterns", headers)
    if status == 200:
        echoed = body_json(response)
        assert not any("mallory" in value for _, value in echoed["headers"])
    else:
        assert status == 400  # the HTTP parser refuses the malformed header name


def test_method_override_headers_never_reach_upstream(stack: GatewayStack) -> None:
    before = stack.upstream_count()
    status, _ = raw_request(
        stack.port,
        b"DELETE /api/patterns/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + b"Authorization: Bearer "
        + stack.limited_key.encode()
        + b"\r\n\r\n",
    )
    assert status == 403  # the key may read, not delete
    assert stack.upstream_count() == before
    headers = [*auth(stack.limited_key), *((name, b"DELETE") for name in OVERRIDES)]
    status, response = raw_get(stack.port, b"/api/patterns/1", headers)
    assert status == 200
    echoed = body_json(response)
    assert echoed["method"] == "GET"
    assert not any("DELETE" in value for _, value in echoed["headers"])


def test_path_rewrite_headers_never_reach_upstream(stack: GatewayStack) -> None:
    status, response = raw_get(stack.port, b"/public", [(n, b"/admin/users") for n in REWRITES])
    assert status == 200
    echoed = body_json(response)
    assert echoed["path"] == "/public"
    assert not any("/admin" in value for _, value in echoed["headers"])


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


def test_the_client_sees_bastions_request_id_never_the_upstreams(stack: GatewayStack) -> None:
    """An upstream's own ``X-Bastion-Request-Id`` would send an operator to a request id no
    audit event has. Its own rate-limit headers pass where bastion sets none."""
    response = stack.get("/public/own-headers")
    assert response.status_code == 200
    [request_id] = response.headers.get_list("x-bastion-request-id")
    assert request_id != "req_upstream"
    assert stack.audit_for(request_id)
    assert response.headers.get_list("ratelimit-remaining") == ["999"]


def get_with_host(port: int, host_lines: list[bytes], version: bytes = b"HTTP/1.1") -> bytes:
    lines = [b"GET /public/x " + version, *host_lines, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize(
    "host_lines",
    [
        [b"Host: evil.example/../reset?x=1#"],
        [b"Host: a.example,evil.example"],
        [b"Host: evil.example:80:80"],
        [b"Host:"],
        [b"Host: good.example", b"Host: evil.example"],
        [],
    ],
    ids=["path-in-host", "list", "two-ports", "empty", "two-hosts", "http-1.1-without-host"],
)
def test_invalid_or_several_hosts_are_400_and_never_reach_upstream(
    stack: GatewayStack, host_lines: list[bytes]
) -> None:
    before = stack.upstream_count()
    status, response = raw_request(stack.port, get_with_host(stack.port, host_lines))
    assert status == 400, response[:300]
    body = body_json(response)
    assert body["code"] == "bad_request"
    [event] = stack.audit_for(body["requestId"])
    assert event["action"] == "request.reject"
    assert stack.upstream_count() == before


def test_upstream_sees_the_host_as_x_forwarded_host(stack: GatewayStack) -> None:
    request = get_with_host(stack.port, [b"Host: app.example:8443"])
    status, response = raw_request(stack.port, request)
    assert status == 200
    forwarded = [v for k, v in body_json(response)["headers"] if k == "x-forwarded-host"]
    assert forwarded == ["app.example:8443"]


def test_http_1_0_without_host_gets_no_x_forwarded_host(stack: GatewayStack) -> None:
    status, response = raw_request(stack.port, get_with_host(stack.port, [], b"HTTP/1.0"))
    assert status == 200
    names = [k for k, _ in body_json(response)["headers"]]
    assert "x-forwarded-host" not in names
    assert "host" in names  # the upstream connection's own, not the client's
