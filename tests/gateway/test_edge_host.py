"""The Host header at the edge (in process): one, and a valid host[:port], or the request is 400.

The upstream builds links from X-Forwarded-Host, so a Host it could misread never gets that far.
The upstream address has nothing listening: a request that got through answers 502.
"""

from __future__ import annotations

import pytest
from starlette.testclient import WebSocketDenialResponse

from tests.gateway.conftest import Gateway, GatewayFactory

BAD_HOSTS = ["evil.example/../reset?x=1#", "", "a.example,evil.example", "user@evil.example"]


def assert_rejected(gw: Gateway, status: int, body: dict[str, str], reason: str) -> None:
    assert status == 400
    assert body["code"] == "bad_request"
    assert reason in body["detail"]
    [event] = [e for e in gw.events() if e.request.get("requestId") == body["requestId"]]
    assert event.action == "request.reject"
    assert event.details == {"reason": "bad_request", "status": 400}


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_invalid_host_is_400_before_the_upstream(gateway: GatewayFactory, host: str) -> None:
    with gateway() as gw:
        response = gw.client.get("/public/x", headers={"Host": host})
        assert response.headers["content-type"] == "application/problem+json"
        assert_rejected(gw, response.status_code, response.json(), "not a valid host[:port]")


def test_several_host_headers_are_400(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        headers = [("Host", "good.example"), ("Host", "evil.example"), *gw.auth().items()]
        response = gw.client.get("/api/patterns", headers=headers)
        assert_rejected(gw, response.status_code, response.json(), "more than one Host")


def test_invalid_host_is_400_at_bastions_own_endpoints(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        assert gw.client.get("/_bastion/health").status_code == 200
        response = gw.client.get("/_bastion/health", headers={"Host": "evil.example/x"})
        assert response.status_code == 400


@pytest.mark.parametrize("host", ["gateway.example", "gateway.example:8443", "[::1]:8080"])
def test_valid_host_goes_on_to_the_upstream(gateway: GatewayFactory, host: str) -> None:
    with gateway() as gw:
        response = gw.client.get("/public/x", headers={"Host": host})
        assert response.status_code == 502  # got through: nothing listens upstream


def refused_handshake(gw: Gateway, host: str) -> WebSocketDenialResponse:
    headers = {**gw.auth(), "Host": host}
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        gw.client.websocket_connect("/public/ws", headers=headers),
    ):
        pass
    return refused.value


def test_invalid_host_refuses_the_websocket_handshake(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        refused = refused_handshake(gw, "evil.example/../reset")
        assert refused.status_code == 400
        assert_rejected(gw, 400, refused.json(), "not a valid host[:port]")


ALLOWED = {"gateway": {"allowedHosts": ["gateway.example", "*.apps.example"]}}


@pytest.mark.parametrize("host", ["evil.example", "gateway.example.evil.example", "apps.example"])
def test_a_host_not_in_allowed_hosts_is_421_and_never_forwarded(
    gateway: GatewayFactory, host: str
) -> None:
    """Host header poisoning: the upstream builds links (a password-reset mail) from
    X-Forwarded-Host, so a Host the deployment does not serve never reaches it."""
    with gateway(ALLOWED) as gw:
        response = gw.client.get("/api/patterns", headers={**gw.auth(), "Host": host})
        body = response.json()
        assert response.status_code == 421
        assert body["code"] == "misdirected_request"
        assert "gateway.allowedHosts" in body["detail"] and host not in body["detail"]
        [event] = [e for e in gw.events() if e.request.get("requestId") == body["requestId"]]
        assert event.action == "request.reject"
        assert event.details == {"reason": "misdirected_request", "status": 421}


def test_an_allowed_host_goes_on_and_probes_answer_any_host(gateway: GatewayFactory) -> None:
    with gateway(ALLOWED) as gw:
        for host in ("gateway.example:8443", "web.apps.example"):
            assert gw.client.get("/public/x", headers={"Host": host}).status_code == 502
        # A load balancer probes by address; bastion's other endpoints are refused.
        assert gw.client.get("/_bastion/health", headers={"Host": "10.1.2.3"}).status_code == 200
        other = gw.client.get("/_bastion/api/v1/whoami", headers={**gw.auth(), "Host": "x.io"})
        assert other.status_code == 421


def test_a_host_not_in_allowed_hosts_refuses_the_websocket_handshake(
    gateway: GatewayFactory,
) -> None:
    with gateway(ALLOWED) as gw:
        assert refused_handshake(gw, "evil.example").status_code == 421
