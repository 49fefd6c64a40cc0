"""What every admin API answer carries, and the one audit event of a read: the status it was
answered with, never an allow at admission and then a deny."""

from __future__ import annotations

from typing import Any

from httpx2 import Response

from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.problem_checks import problem

API = "/_bastion/api"


def _events_of(gw: Gateway, response: Response) -> list[Any]:
    request_id = response.headers["x-bastion-request-id"]
    return [e for e in gw.events() if e.request.get("requestId") == request_id]


def test_a_read_is_audited_once_with_the_status_it_was_answered_with(
    gateway: GatewayFactory,
) -> None:
    """An allow recorded as 200 at admission said nothing of the 404 that was answered."""
    with gateway() as gw:
        found = gw.client.get(f"{API}/v1/users/admin@example.com", headers=gw.auth())
        missing = gw.client.get(f"{API}/v1/users/ghost@example.com", headers=gw.auth())
        [found_event] = _events_of(gw, found)
        [missing_event] = _events_of(gw, missing)
    assert (found.status_code, found_event.details["status"]) == (200, 200)
    assert (missing.status_code, missing_event.details["status"]) == (404, 404)
    assert missing_event.action == found_event.action == "user.read"


def test_a_read_refused_after_admission_is_one_deny_event_not_an_allow_and_a_deny(
    gateway: GatewayFactory,
) -> None:
    with gateway() as gw:
        other = gw.tenant_admin_key()
        response = gw.client.get(
            f"{API}/v1/audit/events?tenant=default", headers={"Authorization": f"Bearer {other}"}
        )
        [event] = _events_of(gw, response)
    assert problem(response, 403, "forbidden")["detail"] == (
        "another tenant's audit trail is for the platform tenant"
    )
    assert (event.outcome, event.details["status"]) == ("denied", 403)
    assert event.details["reasons"] == ["another tenant's audit trail is for the platform tenant"]


def test_every_admin_api_answer_carries_the_request_id_and_security_headers(
    gateway: GatewayFactory,
) -> None:
    """A created key's secret is in a 201 body: no cache may keep it, and the answer is
    traceable to its audit event like any problem answer is."""
    with gateway() as gw:
        created = gw.client.post(
            f"{API}/v1/apikeys",
            json={"name": "ci", "scopes": ["patterns:read"]},
            headers=gw.auth(),
        )
        whoami = gw.client.get(f"{API}/v1/whoami", headers=gw.auth())
        [event] = [
            e for e in gw.events() if e.action == "apikey.create" and e.details["name"] == "ci"
        ]
    for response in (created, whoami):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-bastion-request-id"].startswith("req_")
    assert event.actor["requestId"] == created.headers["x-bastion-request-id"]


def test_the_jwks_keeps_its_public_cache_lifetime(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.get("/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"
