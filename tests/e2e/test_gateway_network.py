"""Trusted proxies and IP allowlists (global and per route), through real processes.

The test client connects from 127.0.0.1, which this stack trusts as a proxy, so it can play
clients at other addresses with ``X-Forwarded-For``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.gwstack import GatewayStack, body_json, gateway_stack, raw_request

pytestmark = pytest.mark.e2e

CONFIG = {
    "gateway": {
        "trustedProxies": ["127.0.0.1/32"],
        "cors": {"enabled": True, "allowOrigins": ["https://app.example.com"]},
    },
    "security": {
        "network": {
            "ipAllowlist": {
                "enabled": True,
                "ranges": ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"],
            }
        }
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-network"), CONFIG) as running:
        yield running


def as_client(stack: GatewayStack, path: str, forwarded_for: str) -> int:
    response = stack.get(path, key=stack.limited_key, headers={"X-Forwarded-For": forwarded_for})
    return response.status_code


@pytest.mark.parametrize("client", ["10.1.2.3", "192.0.2.77", "2001:db8::5", "6.6.6.6, 10.9.9.9"])
def test_allowlisted_client_is_served(stack: GatewayStack, client: str) -> None:
    assert as_client(stack, "/api/patterns", client) == 200


@pytest.mark.parametrize("client", ["203.0.113.5", "2001:db9::1", "10.1.2.3, 203.0.113.5"])
def test_client_outside_allowlist_is_403_and_audited(stack: GatewayStack, client: str) -> None:
    response = stack.get(
        "/api/patterns", key=stack.limited_key, headers={"X-Forwarded-For": client}
    )
    assert response.status_code == 403
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["outcome"] == "denied"
    assert event["actor"]["ip"] == client.split(", ")[-1]


@pytest.mark.parametrize("forwarded", ["not-an-ip", "10.1.2.3, bogus", "10.1.2.3:443", ""])
def test_malformed_forwarded_for_means_unknown_client_and_fails_closed(
    stack: GatewayStack, forwarded: str
) -> None:
    assert as_client(stack, "/api/patterns", forwarded) == 403


def test_route_allowlist_applies_on_top(stack: GatewayStack) -> None:
    assert as_client(stack, "/internal/status", "10.4.4.4") == 200
    response = stack.get(
        "/internal/status", key=stack.limited_key, headers={"X-Forwarded-For": "192.0.2.8"}
    )
    assert response.status_code == 403
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["actor"]["id"] == "admin@example.com"
    assert "ipAllowlist" in event["details"]["reasons"][0]


def test_forwarded_for_from_trusted_proxy_reaches_upstream_chain(stack: GatewayStack) -> None:
    response = stack.get(
        "/api/patterns", key=stack.limited_key, headers={"X-Forwarded-For": "10.7.7.7"}
    )
    forwarded = [v for k, v in response.json()["headers"] if k == "x-forwarded-for"]
    assert forwarded == ["10.7.7.7, 127.0.0.1"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_bastion/api/v1/whoami"),
        ("POST", "/_bastion/login"),
        ("POST", "/_bastion/oauth/token"),
        ("GET", "/.well-known/jwks.json"),
    ],
    ids=["admin-api", "login", "oauth-token", "jwks"],
)
def test_the_allowlist_covers_bastions_own_endpoints_too(
    stack: GatewayStack, method: str, path: str
) -> None:
    """An operator serving only 10.0.0.0/8 had the admin API and the login endpoint (a
    password-guessing target) open to every address."""
    outside = {"X-Forwarded-For": "203.0.113.5", "Authorization": f"Bearer {stack.admin_key}"}
    refused = httpx.request(method, stack.base + path, headers=outside, timeout=10)
    assert refused.status_code == 403
    [event] = stack.audit_for(refused.json()["requestId"])
    assert (event["outcome"], event["actor"]["ip"]) == ("denied", "203.0.113.5")
    assert event["details"]["reasons"] == ["client address is not in security.network.ipAllowlist"]
    inside = {**outside, "X-Forwarded-For": "10.1.2.3"}
    served = httpx.request(method, stack.base + path, headers=inside, timeout=10)
    assert served.status_code != 403


def test_health_stays_reachable_from_outside_the_allowlist(stack: GatewayStack) -> None:
    assert as_client(stack, "/_bastion/health", "203.0.113.5") == 200


def test_an_admin_api_change_records_the_client_a_trusted_proxy_names(
    stack: GatewayStack,
) -> None:
    """The admin API recorded the socket peer (the proxy) where the proxy named the client."""
    response = httpx.post(
        stack.base + "/_bastion/api/v1/groups",
        json={"name": "network-test"},
        headers={"X-Forwarded-For": "10.8.8.8", "Authorization": f"Bearer {stack.admin_key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    [event] = [e for e in stack.audit() if e["action"] == "group.create"]
    assert event["actor"]["ip"] == "10.8.8.8"
    [read] = stack.audit_for(
        httpx.get(
            stack.base + "/_bastion/api/v1/groups",
            headers={"X-Forwarded-For": "10.8.8.9", "Authorization": f"Bearer {stack.admin_key}"},
            timeout=10,
        ).headers["x-bastion-request-id"]
    )
    assert read["actor"]["ip"] == "10.8.8.9"


OUTSIDE = b"X-Forwarded-For: 203.0.113.5\r\n"
PREFLIGHT = (
    b"OPTIONS /admin/anything HTTP/1.1\r\nHost: 127.0.0.1\r\n" + OUTSIDE + b"Origin: "
    b"https://app.example.com\r\nAccess-Control-Request-Method: DELETE\r\nConnection: close\r\n\r\n"
)
DOT_SEGMENT = (
    b"GET /x/%2e%2e/y HTTP/1.1\r\nHost: 127.0.0.1\r\n" + OUTSIDE + b"Connection: close\r\n\r\n"
)
BAD_HOST = b"GET /api/patterns HTTP/1.1\r\nHost: a,b\r\n" + OUTSIDE + b"Connection: close\r\n\r\n"
CODED = (
    b"POST /api/patterns HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    + OUTSIDE
    + b"Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
)


@pytest.mark.parametrize(
    "request_bytes",
    [PREFLIGHT, DOT_SEGMENT, BAD_HOST, CODED],
    ids=["cors-preflight", "dot-segment", "bad-host", "transfer-coding"],
)
def test_nothing_but_403_is_answered_outside_the_allowlist(
    stack: GatewayStack, request_bytes: bytes
) -> None:
    """A preflight (204 and the CORS policy) and malformed requests (400, 501) were answered,
    and audited, before the allowlist ran."""
    status, response = raw_request(stack.port, request_bytes)
    assert status == 403
    head = response.partition(b"\r\n\r\n")[0].lower()
    assert b"access-control-allow-methods" not in head
    problem = body_json(response)
    assert problem["code"] == "address_not_allowed"
    [event] = stack.audit_for(problem["requestId"])
    assert event["details"]["reasons"] == ["client address is not in security.network.ipAllowlist"]
