"""Input validation at the edge (in process): refused before the upstream is ever contacted.

The upstream address has nothing listening, so any request that got through would be 502.
"""

from __future__ import annotations

import pytest

from tests.gateway.conftest import GatewayFactory

LIMITS = {
    "security": {
        "inputValidation": {
            "maxSize": "100B",
            "maxJsonDepth": 4,
            "allowedContentTypes": ["application/json"],
        }
    }
}


def test_oversized_declared_body_is_413(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b"{}" + b" " * 200,
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"


def test_oversized_body_refused_before_authentication(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns", content=b"x" * 500, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413


def test_wrong_content_type_is_415(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b"a=b",
            headers={**gw.auth(), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 415


def test_json_over_max_json_size_is_400_and_over_max_size_413(gateway: GatewayFactory) -> None:
    limits = {"security": {"inputValidation": {"maxSize": "100B", "maxJsonSize": "50B"}}}
    with gateway(limits) as gw:
        headers = {**gw.auth(), "Content-Type": "application/json"}
        within_size = b'{"text": "' + b"a" * 60 + b'"}'
        response = gw.client.post("/api/patterns", content=within_size, headers=headers)
        assert response.status_code == 400
        [event] = [
            e for e in gw.events() if e.request.get("requestId") == response.json()["requestId"]
        ]
        assert event.details["reason"] == "json_too_large"
        over_size = b'{"text": "' + b"a" * 200 + b'"}'
        assert (
            gw.client.post("/api/patterns", content=over_size, headers=headers).status_code == 413
        )


@pytest.mark.parametrize("body", [b"[[[[[1]]]]]", b'{"a":{"b":{"c":{"d":{"e":1}}}}}'])
def test_deep_json_is_400(gateway: GatewayFactory, body: bytes) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns", content=body, headers={**gw.auth(), "Content-Type": "application/json"}
        )
        assert response.status_code == 400
        [event] = [
            e for e in gw.events() if e.request.get("requestId") == response.json()["requestId"]
        ]
        assert event.details["reason"] == "json_too_deep"


def test_valid_json_goes_on_to_the_upstream(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b'{"a": [1]}',
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == 502  # got through: nothing listens upstream


def test_disabled_validation_checks_nothing(gateway: GatewayFactory) -> None:
    extra = {"security": {"inputValidation": {"enabled": False, "maxSize": "10B"}}}
    with gateway(extra) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b"[" * 100,
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == 502
