"""Forward-auth ``/_bastion/verify`` in process: only 200 / 401 / 403 / 429 on a decision, the
original request only from trusted proxies, rate-limit denials in the form the proxy asks for."""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.core.model import AuditEvent
from tests.gateway.conftest import Gateway, GatewayFactory

TRUSTED = {"gateway": {"trustedProxies": ["127.0.0.1/32"]}}
VERIFY = "/_bastion/verify"


def original(uri: str, method: str = "GET") -> dict[str, str]:
    return {"X-Original-URI": uri, "X-Original-Method": method}


def events_for(gw: Gateway, response: httpx.Response) -> list[AuditEvent]:
    request_id = response.headers["x-bastion-request-id"]
    return [e for e in gw.events() if e.request.get("requestId") == request_id]


def test_allow_carries_identity_headers(gateway: GatewayFactory) -> None:
    with gateway(TRUSTED) as gw:
        response = gw.client.get(VERIFY, headers={**gw.auth(), **original("/api/patterns?a=1")})
        assert response.status_code == 200
        assert response.headers["x-bastion-principal"] == "admin@example.com"
        assert response.headers["x-bastion-tenant"] == "default"
        assert response.headers["x-bastion-identity"].count(".") == 2
        events = [e for e in gw.events() if e.details.get("mode") == "forward-auth"]
        assert len(events) == 1
        assert events[0].request["path"] == "/api/patterns"


def test_deny_statuses(gateway: GatewayFactory) -> None:
    with gateway(TRUSTED) as gw:
        assert gw.client.get(VERIFY, headers=original("/api/patterns")).status_code == 401
        unmatched = gw.client.get(VERIFY, headers={**gw.auth(), **original("/nowhere")})
        assert unmatched.status_code == 403
        public = gw.client.get(VERIFY, headers=original("/public/x"))
        assert public.status_code == 200
        assert "x-bastion-principal" not in public.headers


# Sent as full URLs: httpx would read "//admin" alone as a host.
BASE = "http://testserver"
NON_CANONICAL = ["/public/%2e%2e/admin", "/admin;x", "//admin", "/public/..%2fadmin", "/a%5cb"]


@pytest.mark.parametrize("path", NON_CANONICAL)
def test_envoy_form_non_canonical_path_is_a_forward_auth_deny_not_400(
    gateway: GatewayFactory, path: str
) -> None:
    with gateway(TRUSTED) as gw:
        envoy = gw.client.get(BASE + VERIFY + path, headers=gw.auth())
        nginx = gw.client.get(VERIFY, headers={**gw.auth(), **original(path)})
        for response in (envoy, nginx):
            assert response.status_code == 403
            assert response.headers["x-bastion-deny"] == "bad_request"
            [event] = events_for(gw, response)
            assert event.action == "request.reject"
            assert event.details == {"mode": "forward-auth", "reason": "bad_request", "status": 403}


@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_path_outside_verify_stays_400(gateway: GatewayFactory, path: str) -> None:
    with gateway(TRUSTED) as gw:
        response = gw.client.get(BASE + path, headers=gw.auth())
        assert response.status_code == 400
        assert "x-bastion-deny" not in response.headers
        [event] = events_for(gw, response)
        assert event.details == {"reason": "bad_request", "status": 400}


def test_verify_prefix_is_matched_literally(gateway: GatewayFactory) -> None:
    with gateway(TRUSTED) as gw:
        encoded = gw.client.get("/_bastion/%76erify/api/patterns", headers=gw.auth())
        assert encoded.status_code == 404  # never a forward-auth allow
        glued = gw.client.get(VERIFY + "x/api/patterns", headers=gw.auth())
        assert glued.status_code == 404


@pytest.mark.parametrize("host", ["evil.example/../reset?x=1#", "", "a.example,b.example"])
def test_invalid_host_at_verify_is_a_forward_auth_deny(gateway: GatewayFactory, host: str) -> None:
    with gateway(TRUSTED) as gw:
        headers = {**gw.auth(), **original("/api/patterns"), "Host": host}
        response = gw.client.get(VERIFY, headers=headers)
        assert response.status_code == 403
        assert response.headers["x-bastion-deny"] == "bad_request"


def test_untrusted_peer_is_denied_whatever_it_says(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.get(VERIFY, headers={**gw.auth(), **original("/api/patterns")})
        assert response.status_code == 403
        assert gw.client.get(VERIFY + "/api/patterns", headers=gw.auth()).status_code == 403


def test_rate_limited_verify_is_429_or_the_status_the_proxy_asks_for(
    gateway: GatewayFactory,
) -> None:
    limits = {
        "security": {
            "rateLimit": {
                "enabled": True,
                "perClient": {"requestsPerSecond": 0.001, "burstSize": 1},
            }
        }
    }
    with gateway({**TRUSTED, **limits}) as gw:
        headers = {**gw.auth(), **original("/api/patterns")}
        assert gw.client.get(VERIFY, headers=headers).status_code == 200
        refused = gw.client.get(VERIFY, headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-bastion-deny"] == "rate_limited"
        as_nginx = gw.client.get(VERIFY, headers={**headers, "X-Bastion-Rate-Limit-Status": "403"})
        assert as_nginx.status_code == 403
        assert as_nginx.headers["x-bastion-deny"] == "rate_limited"
        assert "retry-after" in as_nginx.headers
        odd = gw.client.get(VERIFY, headers={**headers, "X-Bastion-Rate-Limit-Status": "200"})
        assert odd.status_code == 429  # only a deny status may be asked for


def test_route_allowlist_uses_forwarded_client_address(gateway: GatewayFactory) -> None:
    extra = {
        "gateway": {
            "trustedProxies": ["127.0.0.1/32"],
            "routes": [
                {
                    "method": "GET",
                    "path": "/internal/**",
                    "resource": "patterns",
                    "action": "read",
                    "ipAllowlist": ["10.0.0.0/8"],
                }
            ],
        }
    }
    with gateway(extra) as gw:
        headers = {**gw.auth(), **original("/internal/x")}
        inside = gw.client.get(VERIFY, headers={**headers, "X-Forwarded-For": "10.2.3.4"})
        outside = gw.client.get(VERIFY, headers={**headers, "X-Forwarded-For": "192.0.2.1"})
        assert (inside.status_code, outside.status_code) == (200, 403)


def test_verify_answers_only_decision_statuses(gateway: GatewayFactory) -> None:
    with gateway(TRUSTED) as gw:

        @settings(max_examples=200, deadline=None)
        @given(
            uri=st.text(alphabet=string.printable.strip() + " ", max_size=40),
            method=st.sampled_from(["GET", "POST", "get", "", "G E T", "DELETE", "X1"]),
            key=st.sampled_from([None, "admin", "garbage"]),
        )
        def check(uri: str, method: str, key: str | None) -> None:
            headers = {"X-Original-URI": uri.strip(), "X-Original-Method": method}
            if key == "admin":
                headers.update(gw.auth())
            elif key:
                headers["Authorization"] = "Bearer " + key
            response = gw.client.get(VERIFY, headers=headers)
            assert response.status_code in (200, 401, 403, 429)
            if response.status_code == 200 and key != "admin":
                assert uri.strip().startswith("/public/")

        check()
