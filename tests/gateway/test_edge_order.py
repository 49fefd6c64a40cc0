"""The stages before anything is answered (DESIGN.md section 2): the IP allowlist and the
global rate limit come before the CORS preflight, the Host, transfer-coding and canonical-path
checks and forward-auth's reading of the original request, and a refusal of those is charged
to the client address's per-client bucket. From outside ``security.network.ipAllowlist`` a
client learns nothing but ``403``, and with an empty bucket gets ``429``, whatever it sends.

The test client connects from 127.0.0.1; the allowlist below does not include it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.testclient import WebSocketDenialResponse

from tests.gateway.conftest import Gateway, GatewayFactory

OUTSIDE = {"security": {"network": {"ipAllowlist": {"enabled": True, "ranges": ["10.0.0.0/8"]}}}}
CORS = {"gateway": {"cors": {"enabled": True, "allowOrigins": ["https://app.example.com"]}}}
PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"}
BASE = "http://testserver"  # full URLs: httpx would read "//admin" alone as a host


def limits(bucket: str, burst: int = 1) -> dict[str, Any]:
    quota = {"requestsPerSecond": 0.001, "burstSize": burst}
    return {"security": {"rateLimit": {"enabled": True, bucket: quota}}}


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for section, values in part.items():
            out[section] = {**out.get(section, {}), **values}
    return out


EARLY_REJECTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/public/x", {"Host": "a.example,b.example"}),
    ("POST", "/api/patterns", {"Transfer-Encoding": "gzip, chunked"}),
    ("GET", "/public/%2e%2e/admin", {}),
    ("GET", "//admin", {}),
]
EARLY_IDS = ["bad-host", "transfer-coding", "dot-segment", "double-slash"]


def send(gw: Gateway, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    content = b"0\r\n\r\n" if "Transfer-Encoding" in headers else None
    return gw.client.request(method, BASE + path, headers=headers, content=content)


def denied_by_allowlist(gw: Gateway, response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.json()["code"] == "address_not_allowed"
    # The preflight's answer (methods, headers, max age) is not given; the origin's
    # Access-Control-Allow-Origin is, as on every deny, so a browser can read it.
    assert not {"access-control-allow-methods", "access-control-max-age"} & set(response.headers)
    [event] = [e for e in gw.events() if e.request.get("requestId") == response.json()["requestId"]]
    assert event.details["reasons"] == ["client address is not in security.network.ipAllowlist"]


def test_preflight_from_outside_the_allowlist_is_403_and_shows_no_cors_policy(
    gateway: GatewayFactory,
) -> None:
    with gateway(merged(OUTSIDE, CORS)) as gw:
        response = gw.client.options("/admin/anything", headers=PREFLIGHT)
        denied_by_allowlist(gw, response)


@pytest.mark.parametrize(("method", "path", "headers"), EARLY_REJECTS, ids=EARLY_IDS)
def test_malformed_request_from_outside_the_allowlist_is_403_not_400(
    gateway: GatewayFactory, method: str, path: str, headers: dict[str, str]
) -> None:
    with gateway(OUTSIDE) as gw:
        denied_by_allowlist(gw, send(gw, method, path, headers))


def test_probes_stay_open_but_a_malformed_one_meets_the_allowlist(gateway: GatewayFactory) -> None:
    with gateway(OUTSIDE) as gw:
        assert gw.client.get("/_bastion/health").status_code == 200
        denied_by_allowlist(gw, gw.client.get("/_bastion/health", headers={"Host": "a,b"}))


def test_preflights_are_charged_to_the_clients_bucket(gateway: GatewayFactory) -> None:
    with gateway(merged(CORS, limits("perClient", burst=2))) as gw:
        granted = [gw.client.options("/api/patterns", headers=PREFLIGHT) for _ in range(2)]
        refused = gw.client.options("/api/patterns", headers=PREFLIGHT)
        assert [r.status_code for r in granted] == [204, 204]
        assert granted[0].headers["access-control-allow-methods"]
        assert refused.status_code == 429
        assert "access-control-allow-methods" not in refused.headers
        assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("method", "path", "headers"), EARLY_REJECTS, ids=EARLY_IDS)
def test_malformed_requests_are_charged_to_the_clients_bucket(
    gateway: GatewayFactory, method: str, path: str, headers: dict[str, str]
) -> None:
    with gateway(limits("perClient")) as gw:
        assert send(gw, method, path, headers).status_code in (400, 501)
        refused = send(gw, method, path, headers)
        assert refused.status_code == 429
        [event] = [
            e for e in gw.events() if e.request.get("requestId") == refused.json()["requestId"]
        ]
        assert event.details["limit"] == "perClient"


@pytest.mark.parametrize(("method", "path", "headers"), EARLY_REJECTS, ids=EARLY_IDS)
def test_the_global_limit_comes_before_the_input_checks(
    gateway: GatewayFactory, method: str, path: str, headers: dict[str, str]
) -> None:
    with gateway(limits("global")) as gw:
        assert gw.client.get("/public/x").status_code == 502  # takes the one place
        assert send(gw, method, path, headers).status_code == 429


def test_preflight_meets_the_global_limit(gateway: GatewayFactory) -> None:
    with gateway(merged(CORS, limits("global"))) as gw:
        assert gw.client.get("/public/x").status_code == 502
        assert gw.client.options("/api/patterns", headers=PREFLIGHT).status_code == 429


TRUSTED = {"gateway": {"trustedProxies": ["127.0.0.1/32"]}}
VERIFY = "/_bastion/verify"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Original-URI": "/public/%2e%2e/admin", "X-Original-Method": "GET"},
        {"X-Original-URI": "/public/x", "X-Original-Method": "GET", "Host": "a,b"},
        {},  # no original request
    ],
    ids=["non-canonical", "bad-host", "missing"],
)
def test_forward_auth_meets_the_allowlist_before_the_original_request_is_judged(
    gateway: GatewayFactory, headers: dict[str, str]
) -> None:
    with gateway(merged(TRUSTED, OUTSIDE)) as gw:
        response = gw.client.get(VERIFY, headers={**headers, "X-Forwarded-For": "203.0.113.5"})
        assert response.status_code == 403
        assert response.headers["x-bastion-deny"] == "address_not_allowed"


def test_forward_auth_charges_an_unreadable_original_request_to_the_client(
    gateway: GatewayFactory,
) -> None:
    with gateway(merged(TRUSTED, limits("perClient"))) as gw:
        bad = {"X-Original-URI": "/public/%2e%2e/admin", "X-Original-Method": "GET"}
        assert gw.client.get(VERIFY, headers=bad).headers["x-bastion-deny"] == "bad_request"
        refused = gw.client.get(VERIFY, headers=bad)
        assert refused.status_code == 429
        assert refused.headers["x-bastion-deny"] == "rate_limited"


def handshake_status(gw: Gateway, headers: dict[str, str]) -> int:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        gw.client.websocket_connect("/public/ws", headers=headers),
    ):
        pass
    return refused.value.status_code


def test_websocket_handshake_from_outside_the_allowlist_is_403_whatever_its_host(
    gateway: GatewayFactory,
) -> None:
    with gateway(OUTSIDE) as gw:
        assert handshake_status(gw, {"Host": "evil.example/../reset"}) == 403


def test_websocket_handshake_with_a_bad_host_is_charged_to_the_client(
    gateway: GatewayFactory,
) -> None:
    with gateway(limits("perClient")) as gw:
        assert handshake_status(gw, {"Host": "evil.example/../reset"}) == 400
        assert handshake_status(gw, {"Host": "evil.example/../reset"}) == 429
