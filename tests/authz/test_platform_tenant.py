"""The platform tenant is ``security.defaultTenant`` in canonical form, for every router that
keeps something to it: written ``Ops``, the tenant is ``ops`` and its principals keep access to
policies, every tenant's audit trail, tenants and signing keys; other tenants still do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from httpx2 import Response

from bastion.core.model import PrincipalKind
from tests.authz.api_world import ACTOR, API, api_world

OPS = "  defaultTenant: Ops\n"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/policies", None),
        ("GET", "/policies/schema", None),
        ("POST", "/policies/validate", {"text": "permit(principal, action, resource);"}),
        ("GET", "/audit/events?tenant={other}&limit=1", None),
        ("POST", "/tenants", {"name": "gamma"}),
        ("POST", "/signingkeys/rotate", {}),
    ],
)
def test_a_platform_tenant_written_with_capitals_keeps_its_platform_access(
    tmp_path: Path, method: str, path: str, body: dict[str, str] | None
) -> None:
    with api_world(tmp_path, OPS, tenants=("Ops", "beta")) as world:

        def ask(who: str, other: str) -> Response:
            target = API + path.format(other=other)
            return world.client.request(method, target, json=body, headers=world.headers(who))

        platform, other = ask("Ops", other="beta"), ask("beta", other="ops")
    assert platform.status_code in (200, 201), platform.text
    assert other.status_code == 403, other.text


def test_the_platform_tenant_sees_every_tenant_and_every_tenants_events(tmp_path: Path) -> None:
    with api_world(tmp_path, OPS, tenants=("Ops", "beta")) as world:
        tenants = world.client.get(f"{API}/tenants", headers=world.headers("Ops")).json()
        events = world.client.get(
            f"{API}/audit/events?limit=1000", headers=world.headers("Ops")
        ).json()["events"]
    assert {t["name"] for t in tenants} == {"ops", "beta"}
    assert {e["tenant"] for e in events} >= {"ops", "beta"}


def test_a_configured_binding_without_a_tenant_applies_in_a_capitalised_default_tenant(
    tmp_path: Path,
) -> None:
    binding = (
        "  rbac:\n    bindings:\n"
        "      - subject: {type: user, name: reader@example.com}\n        role: viewer\n"
    )
    with api_world(tmp_path, OPS + binding, tenants=("Ops", "beta")) as world:
        assert world.services.config.security.default_tenant == "ops"
        world.services.identity.directory.create(
            tenant_name="ops", kind=PrincipalKind.USER, name="reader@example.com", actor=ACTOR
        )
        key = world.services.api_keys.create(
            tenant_name="ops",
            owner_name="reader@example.com",
            name="reader",
            scopes=["admin"],
            expires_at=None,
            actor=ACTOR,
        ).secret
        listed = world.client.get(f"{API}/users", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200, listed.text
