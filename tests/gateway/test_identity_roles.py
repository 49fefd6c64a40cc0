"""What the upstream is told of a caller's roles: one comma-separated list (``X-Bastion-Roles``,
``X-Bastion-Actor-Roles``, the assertion's ``roles`` claims) that no role's name can split.

Role names with a comma or white space are refused where roles are defined (the admin API, the
CLI, bastion.yaml); one stored before that (``reader,admin``) is left out of the list, never
passed on to read as ``admin``.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime

import pytest

from bastion.core.model import CustomRole, Principal, PrincipalKind, RoleBinding, SubjectType
from bastion.crypto.identity import IdentitySigner
from bastion.gateway.headers import identity_headers
from bastion.services.access import Identity
from bastion.services.lookups import get_tenant
from tests.gateway.conftest import GatewayFactory
from tests.services.conftest import FrozenClock

NOW = datetime(2026, 12, 1, tzinfo=UTC)
USER = Principal("prn_1", "ten_1", PrincipalKind.USER, "alice@example.com", NOW)
AGENT = Principal("prn_2", "ten_1", PrincipalKind.AGENT, "ci-bot", NOW)


def claims_of(assertion: bytes) -> dict[str, object]:
    payload = assertion.split(b".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + b"=="))
    return decoded


def test_a_role_named_like_two_roles_never_reaches_the_upstream_as_two(
    caplog: pytest.LogCaptureFixture,
) -> None:
    identity = Identity(
        USER,
        "acme",
        ("reader,admin", "viewer"),
        "key_1",
        acting=AGENT,
        acting_roles=("ops admin", "developer"),
    )
    signer = IdentitySigner(b"p" * 40, issuer="bastion:test")
    with caplog.at_level(logging.WARNING, logger="bastion.gateway"):
        headers = dict(identity_headers(identity, signer, FrozenClock(NOW)))
    assert headers[b"x-bastion-roles"] == b"viewer"
    assert headers[b"x-bastion-actor-roles"] == b"developer"
    claims = claims_of(headers[b"x-bastion-identity"])
    assert claims["roles"] == "viewer"
    assert claims["act"] == {"sub": "ci-bot", "kind": "agent", "roles": "developer"}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'reader,admin' is left out" in warned and "'ops admin' is left out" in warned


def test_a_stored_role_named_like_two_roles_is_left_out_of_forward_auth_headers(
    gateway: GatewayFactory,
) -> None:
    """A database from before the rule: role ``reader,admin`` bound to the caller."""
    with gateway({"gateway": {"trustedProxies": ["127.0.0.1/32"]}}) as gw:
        services = gw.services
        with services.storage.transaction() as tx:
            tenant = get_tenant(tx, "default")
            now = services.clock.now()
            name = "reader,admin"
            tx.roles.create(CustomRole("rol_x", tenant.id, name, ("patterns:read",), (), now, now))
            tx.bindings.create(
                RoleBinding("bnd_x", tenant.id, SubjectType.USER, "admin@example.com", name, now)
            )
        services.authorizer.invalidate()
        original = {"X-Original-URI": "/api/patterns", "X-Original-Method": "GET"}
        response = gw.client.get("/_bastion/verify", headers={**gw.auth(), **original})
    assert response.status_code == 200
    roles = response.headers["x-bastion-roles"].split(",")
    assert "reader" not in roles and name not in response.headers["x-bastion-roles"]
    assert roles == claims_of(response.headers["x-bastion-identity"].encode())["roles"].split(",")
