"""security.rateLimit covers the admin API: a client's perClient bucket is charged for every
call, so neither a key holder nor a key guesser can flood it, while the gateway's shared
buckets (global, perTenant) can never lock an administrator out of it."""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import GatewayFactory
from tests.gateway.problem_checks import problem

WHOAMI = "/_bastion/api/v1/whoami"


def limits(**rates: dict[str, float]) -> dict[str, Any]:
    return {"security": {"rateLimit": {"enabled": True, **rates}}}


def per_client(burst: int) -> dict[str, float]:
    return {"requestsPerSecond": 0.001, "burstSize": burst}


def test_a_client_over_its_rate_is_refused_429_and_audited(gateway: GatewayFactory) -> None:
    with gateway(limits(perClient=per_client(3))) as gw:
        answered = [gw.client.get(WHOAMI, headers=gw.auth()).status_code for _ in range(3)]
        refused = gw.client.get(WHOAMI, headers=gw.auth())
        another = gw.client.get(
            WHOAMI, headers={"Authorization": f"Bearer {gw.tenant_admin_key()}"}
        )
        request_id = refused.headers["x-bastion-request-id"]
        [event] = [e for e in gw.events() if e.request.get("requestId") == request_id]
    assert answered == [200, 200, 200]
    problem(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert (event.action, event.outcome, event.details["status"]) == (
        "identity.read",
        "denied",
        429,
    )
    assert another.status_code == 200  # its own bucket


def test_guessing_keys_at_the_admin_api_is_throttled_by_address(gateway: GatewayFactory) -> None:
    with gateway(limits(perClient=per_client(3))) as gw:
        guess = {"Authorization": "Bearer bk_live_" + "A" * 40}
        statuses = [gw.client.get(WHOAMI, headers=guess).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_gateway_traffic_cannot_lock_an_administrator_out(gateway: GatewayFactory) -> None:
    """The tenant's bucket emptied by proxied requests, and the global one too: the admin API
    still answers, so the key behind the flood can be revoked."""
    rates = limits(
        perClient=per_client(50),
        perTenant=per_client(1),
        **{"global": {"requestsPerSecond": 0.001, "burstSize": 2}},
    )
    with gateway(rates) as gw:
        proxied = [gw.client.get("/api/patterns", headers=gw.auth()).status_code for _ in range(3)]
        admin = gw.client.get(WHOAMI, headers=gw.auth())
    assert proxied[0] == 502 and proxied[1:] == [429, 429]  # nothing listens upstream
    assert admin.status_code == 200


def test_without_rate_limits_the_admin_api_is_not_limited(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        statuses = {gw.client.get(WHOAMI, headers=gw.auth()).status_code for _ in range(30)}
    assert statuses == {200}
