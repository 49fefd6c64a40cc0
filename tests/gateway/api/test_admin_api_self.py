"""An administrator cannot lock itself out through the API: disabling or deleting the account
a request comes from is refused (a tenant cannot disable itself either: tenants.py)."""

from __future__ import annotations

import pytest

from bastion.core.model import PrincipalKind
from tests.gateway.conftest import GatewayFactory
from tests.gateway.problem_checks import problem

ME = "/_bastion/api/v1/users/ADMIN@Example.com"  # any spelling of the caller's own name


@pytest.mark.parametrize(("method", "verb"), [("PATCH", "disable"), ("DELETE", "delete")])
def test_the_caller_cannot_disable_or_delete_itself(
    gateway: GatewayFactory, method: str, verb: str
) -> None:
    with gateway() as gw:
        body = {"disabled": True} if method == "PATCH" else None
        refused = gw.client.request(method, ME, json=body, headers=gw.auth())
        still = gw.client.get("/_bastion/api/v1/whoami", headers=gw.auth())
    assert problem(refused, 409, "conflict")["detail"] == (
        f"user admin@example.com is the caller; it cannot {verb} itself (another administrator"
        f" can, or `bastion user {verb}` on the server)"
    )
    assert still.status_code == 200


def test_the_caller_may_rename_itself_and_disable_anyone_else(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        gw.services.identity.directory.create(
            tenant_name="default",
            kind=PrincipalKind.USER,
            name="bob@example.com",
            actor={"type": "operator", "id": "tester"},
        )
        renamed = gw.client.patch(ME, json={"displayName": "Admin"}, headers=gw.auth())
        bob = gw.client.patch(
            "/_bastion/api/v1/users/bob@example.com", json={"disabled": True}, headers=gw.auth()
        )
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Admin"
    assert bob.status_code == 200 and bob.json()["disabled"] is True
