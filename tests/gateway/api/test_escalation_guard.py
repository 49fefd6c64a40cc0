"""Nobody hands out more than they hold through the admin API: not by rotating someone else's
key, minting an agent registration token or a service-account credential, joining a group,
setting another user's password, taking a name that bastion.yaml binds roles to, or acting on
someone's behalf with a delegated token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.core.model import PrincipalKind, SubjectType
from tests.authz.api_world import ACTOR, API, ApiWorld, api_world

PASSWORD = "Correct-Horse-9-Battery"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world(tmp_path) as built:
        yield built


def limited(
    world: ApiWorld,
    name: str,
    permissions: list[str],
    scopes: list[str],
    kind: PrincipalKind = PrincipalKind.USER,
) -> None:
    """A principal of ``kind`` bound to a role of ``permissions``, with a key of ``scopes``
    (stored as ``world.keys[name]``)."""
    services = world.services
    services.authz.admin.save_role(
        tenant_name="default",
        name=f"role-{name}",
        permissions=permissions,
        inherits=[],
        actor=ACTOR,
        create=True,
    )
    services.identity.directory.create(tenant_name="default", kind=kind, name=name, actor=ACTOR)
    services.authz.admin.bind(
        tenant_name="default",
        subject_type=SubjectType(kind.value),
        subject_name=name,
        role=f"role-{name}",
        expires_at=None,
        actor=ACTOR,
    )
    issued = services.api_keys.create(
        tenant_name="default",
        owner_name=name,
        name=f"key-{name}",
        scopes=scopes,
        expires_at=None,
        actor=ACTOR,
    )
    world.keys[name] = issued.secret


def call(world: ApiWorld, method: str, path: str, who: str, **kw: Any) -> Any:
    return world.client.request(method, API + path, headers=world.headers(who), **kw)


def test_rotating_another_principals_key_does_not_hand_out_its_secret(world: ApiWorld) -> None:
    limited(world, "km@example.com", ["apikeys:*"], ["apikeys:read", "apikeys:update"])
    keys = call(world, "GET", "/apikeys", "km@example.com").json()
    admin_key = next(k for k in keys if k["owner"] == "admin@example.com")
    stolen = call(world, "POST", f"/apikeys/{admin_key['id']}/rotate", "km@example.com")
    assert stolen.status_code == 403
    assert "secret" not in stolen.text
    still = call(world, "GET", "/apikeys", "default").json()
    assert [k["revoked"] for k in still if k["id"] == admin_key["id"]] == [None]
    # The key presenting itself may rotate: it gains nothing, and the answer names its owner.
    own = next(k for k in keys if k["owner"] == "km@example.com")
    rotated = call(world, "POST", f"/apikeys/{own['id']}/rotate", "km@example.com")
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["owner"] == "km@example.com"
    # An admin may rotate anyone's key, and the answer names the key's owner, not the caller.
    by_admin = call(world, "POST", f"/apikeys/{rotated.json()['id']}/rotate", "default")
    assert by_admin.json()["owner"] == "km@example.com"
    # The key already replaced is not rotated again: its replacement is.
    again = call(world, "POST", f"/apikeys/{own['id']}/rotate", "default")
    assert again.status_code == 400
    assert "rotate its replacement" in again.json()["detail"]


def test_a_token_minted_with_a_key_cannot_rotate_that_key_past_its_own_scopes(
    world: ApiWorld,
) -> None:
    """A client_credentials token carries its key's id, but is not the key: narrowed to
    ``apikeys:update``, it must not get a new secret with the key's full scopes."""
    scopes = ["apikeys:update", "apikeys:read", "patterns:*"]
    limited(world, "svc", ["apikeys:*", "patterns:*"], scopes, kind=PrincipalKind.SERVICE_ACCOUNT)
    issued = world.client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "client_credentials", "scope": "apikeys:update"},
        auth=("svc", world.keys["svc"]),
    )
    assert issued.status_code == 200, issued.text
    world.keys["narrowed"] = issued.json()["access_token"]
    keys = call(world, "GET", "/apikeys", "default").json()
    source = next(k for k in keys if k["owner"] == "svc")
    rotated = call(world, "POST", f"/apikeys/{source['id']}/rotate", "narrowed")
    assert rotated.status_code == 403
    assert "secret" not in rotated.text
    assert call(world, "GET", "/apikeys", "svc").status_code == 200  # the key still works


def test_registration_token_cannot_carry_roles_the_caller_lacks(world: ApiWorld) -> None:
    limited(world, "maker@example.com", ["agents:create"], ["agents:create"])
    body = {"capabilities": ["*"], "roles": ["admin"]}
    refused = call(world, "POST", "/agents/tokens", "maker@example.com", json=body)
    assert refused.status_code == 403
    assert "admin" not in [
        t["roles"] for t in call(world, "GET", "/agents/tokens", "default").json()
    ]
    plain = call(
        world, "POST", "/agents/tokens", "maker@example.com", json={"capabilities": ["analysis"]}
    )
    assert plain.status_code == 201, plain.text
    unknown = call(
        world, "POST", "/agents/tokens", "default", json={"capabilities": ["a"], "roles": ["nope"]}
    )
    assert unknown.status_code == 400


def test_service_account_credential_cannot_exceed_the_callers_holdings(world: ApiWorld) -> None:
    limited(world, "keymaker@example.com", ["apikeys:create"], ["admin"])
    world.services.identity.directory.create(
        tenant_name="default", kind=PrincipalKind.SERVICE_ACCOUNT, name="ci", actor=ACTOR
    )
    world.services.authz.admin.bind(
        tenant_name="default",
        subject_type=SubjectType.SERVICE_ACCOUNT,
        subject_name="ci",
        role="admin",
        expires_at=None,
        actor=ACTOR,
    )
    body = {"name": "ci-secret", "scopes": ["admin"]}
    minted = call(
        world, "POST", "/serviceaccounts/ci/credentials", "keymaker@example.com", json=body
    )
    assert minted.status_code == 403
    narrow = {"name": "ci-narrow", "scopes": ["apikeys:create"]}
    allowed = call(
        world, "POST", "/serviceaccounts/ci/credentials", "keymaker@example.com", json=narrow
    )
    assert allowed.status_code == 201, allowed.text


def test_joining_a_role_bound_group_needs_what_the_group_brings(world: ApiWorld) -> None:
    limited(world, "grp@example.com", ["groups:update"], ["groups:update"])
    assert call(world, "POST", "/groups", "default", json={"name": "admins"}).status_code == 201
    binding = {"subject": {"type": "group", "name": "admins"}, "role": "admin"}
    assert call(world, "POST", "/bindings", "default", json=binding).status_code == 201
    joined = call(world, "PUT", "/groups/admins/members/grp@example.com", "grp@example.com")
    assert joined.status_code == 403
    assert call(world, "GET", "/users", "grp@example.com").status_code == 403
    assert call(world, "POST", "/groups", "default", json={"name": "plain"}).status_code == 201
    plain = call(world, "PUT", "/groups/plain/members/grp@example.com", "grp@example.com")
    assert plain.status_code == 200, plain.text
    left = call(world, "DELETE", "/groups/plain/members/grp@example.com", "grp@example.com")
    assert left.status_code == 200


def test_setting_a_more_privileged_users_password_is_refused(world: ApiWorld) -> None:
    limited(world, "helpdesk@example.com", ["users:update", "users:create"], ["admin"])
    taken = call(
        world,
        "PUT",
        "/users/admin@example.com/password",
        "helpdesk@example.com",
        json={"password": PASSWORD},
    )
    assert taken.status_code == 403
    login = world.client.post(
        "/_bastion/login", json={"username": "admin@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401
    body = {"name": "intern@example.com", "password": PASSWORD}
    assert call(world, "POST", "/users", "helpdesk@example.com", json=body).status_code == 201
    reset = call(
        world,
        "PUT",
        "/users/intern@example.com/password",
        "helpdesk@example.com",
        json={"password": PASSWORD + "-2"},
    )
    assert reset.status_code == 204, reset.text


def test_creating_a_user_with_a_password_under_a_configured_admin_binding_is_refused(
    tmp_path: Path,
) -> None:
    extra = (
        "  rbac:\n    bindings:\n      - subject: {type: user, name: ops-lead@example.com}\n"
        "        role: admin\n"
    )
    with api_world(tmp_path, extra) as world:
        limited(world, "hr@example.com", ["users:create"], ["users:create"])
        body = {"name": "ops-lead@example.com", "password": PASSWORD}
        created = call(world, "POST", "/users", "hr@example.com", json=body)
        assert created.status_code == 403
        missing = call(world, "GET", "/users/ops-lead@example.com", "default")
        assert missing.status_code == 404
        without = call(
            world, "POST", "/users", "hr@example.com", json={"name": "ops-lead@example.com"}
        )
        assert without.status_code == 201


def test_delegated_token_is_held_to_its_actor_when_it_hands_anything_out(
    world: ApiWorld,
) -> None:
    limited(
        world,
        "bot",
        ["apikeys:create", "roles:create", "roles:read", "bindings:create"],
        ["admin"],
        kind=PrincipalKind.SERVICE_ACCOUNT,
    )
    boss = {"name": "boss@example.com", "password": PASSWORD}
    assert call(world, "POST", "/users", "default", json=boss).status_code == 201
    binding = {"subject": {"type": "user", "name": "boss@example.com"}, "role": "admin"}
    assert call(world, "POST", "/bindings", "default", json=binding).status_code == 201
    token = world.client.post(
        "/_bastion/login", json={"username": "boss@example.com", "password": PASSWORD}
    ).json()["access_token"]
    with world.services.storage.transaction() as tx:
        tenant = tx.tenants.get_by_name("default")
        bot_id = tx.principals.get_by_name(tenant.id, "bot").id
    exchanged = world.client.post(
        "/_bastion/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        auth=(bot_id, world.keys["bot"]),
    )
    assert exchanged.status_code == 200, exchanged.text
    world.keys["delegated"] = exchanged.json()["access_token"]
    minted = call(
        world, "POST", "/apikeys", "delegated", json={"name": "forever", "scopes": ["admin"]}
    )
    assert minted.status_code == 403
    wide = {"name": "botwide", "permissions": ["*:*"]}
    assert call(world, "POST", "/roles", "delegated", json=wide).status_code == 403
    to_admin = {"subject": {"type": "serviceAccount", "name": "bot"}, "role": "admin"}
    assert call(world, "POST", "/bindings", "delegated", json=to_admin).status_code == 403


def test_a_key_name_cannot_shadow_another_keys_id_or_prefix(world: ApiWorld) -> None:
    keys = call(world, "GET", "/apikeys", "default").json()
    admin_key = keys[0]
    for name in (admin_key["id"], admin_key["prefix"], "bk_live_anything"):
        shadow = call(
            world, "POST", "/apikeys", "default", json={"name": name, "scopes": ["admin"]}
        )
        assert shadow.status_code == 400, name
        assert name not in shadow.text
    other = call(world, "POST", "/apikeys", "default", json={"name": "other", "scopes": ["admin"]})
    assert other.status_code == 201
    revoked = call(world, "DELETE", f"/apikeys/{other.json()['id']}", "default")
    assert revoked.status_code == 200


def test_an_expiry_without_a_utc_offset_is_a_400_not_a_500(world: ApiWorld) -> None:
    naive = "2030-01-01T00:00:00"
    key = call(
        world,
        "POST",
        "/apikeys",
        "default",
        json={"name": "n", "scopes": ["admin"], "expires": naive},
    )
    assert key.status_code == 400 and "expires" in key.text
    binding = {
        "subject": {"type": "user", "name": "admin@example.com"},
        "role": "viewer",
        "expires": naive,
    }
    assert call(world, "POST", "/bindings", "default", json=binding).status_code == 400


NAMED = """  agentAuth:
    token:
      registrationRequired: false
  rbac:
    bindings:
      - {subject: {type: serviceAccount, name: deployer}, role: admin}
    platformBindings:
      - {subject: {type: agent, name: crawler}, role: admin, targetTenants: [beta]}
"""


def test_creating_a_service_account_under_a_configured_admin_binding_is_refused(
    tmp_path: Path,
) -> None:
    with api_world(tmp_path, NAMED) as world:
        limited(world, "ops@example.com", ["serviceaccounts:*", "apikeys:*"], ["admin"])
        taken = call(
            world, "POST", "/serviceaccounts", "ops@example.com", json={"name": "Deployer"}
        )
        assert taken.status_code == 403
        assert call(world, "GET", "/serviceaccounts/deployer", "default").status_code == 404
        plain = call(world, "POST", "/serviceaccounts", "ops@example.com", json={"name": "ci"})
        assert plain.status_code == 201, plain.text
        # Someone who holds what the binding grants may create it.
        held = call(world, "POST", "/serviceaccounts", "default", json={"name": "deployer"})
        assert held.status_code == 201, held.text


def test_creating_an_agent_a_platform_binding_takes_to_another_tenant_is_refused(
    tmp_path: Path,
) -> None:
    with api_world(tmp_path, NAMED) as world:
        limited(world, "ops@example.com", ["agents:*"], ["admin"])
        taken = call(world, "POST", "/agents", "ops@example.com", json={"name": "crawler"})
        assert taken.status_code == 403
        assert call(world, "GET", "/agents/crawler", "default").status_code == 404
        plain = call(world, "POST", "/agents", "ops@example.com", json={"name": "walker"})
        assert plain.status_code == 201, plain.text
        held = call(world, "POST", "/agents", "default", json={"name": "crawler"})
        assert held.status_code == 201, held.text


def test_registration_cannot_claim_a_configured_name_over_the_api(tmp_path: Path) -> None:
    extra = (
        "  rbac:\n    bindings:\n      - {subject: {type: agent, name: deployer}, role: admin}\n"
    )
    with api_world(tmp_path, extra) as world:
        body = {"capabilities": ["classification"], "roles": ["viewer"]}
        secret = call(world, "POST", "/agents/tokens", "default", json=body).json()["token"]
        bearer = {"Authorization": f"Bearer {secret}"}
        taken = world.client.post(
            f"{API}/agents/register", headers=bearer, json={"name": "deployer"}
        )
        assert taken.status_code == 409
        assert taken.json()["detail"] == (
            "the name deployer is reserved by a binding in bastion.yaml; choose another"
        )
        again = world.client.post(f"{API}/agents/register", headers=bearer, json={"name": "d2"})
        assert again.status_code == 201, again.text
        assert again.json()["roles"] == ["viewer"]


def test_escalation_refusal_is_audited_and_says_why(world: ApiWorld) -> None:
    """The caller passed the route (it may create tokens) and is told what it lacks; the audit
    log keeps the deny with its reason. A deny at the route still says nothing."""
    limited(world, "maker@example.com", ["agents:create"], ["agents:create"])
    body = {"capabilities": ["*"], "roles": ["admin"]}
    refused = call(world, "POST", "/agents/tokens", "maker@example.com", json=body)
    assert refused.status_code == 403
    assert "which the caller lacks" in refused.json()["detail"]
    at_route = call(world, "GET", "/users", "maker@example.com")
    assert at_route.status_code == 403 and "detail" not in at_route.json()
    with world.services.storage.transaction() as tx:
        denied = [e for e in tx.audit.iterate() if e.outcome == "denied"]
    guard = [e for e in denied if e.request.get("path") == "/v1/agents/tokens"]
    assert len(guard) == 1 and guard[0].actor["id"] == "maker@example.com"
    assert "which the caller lacks" in " ".join(guard[0].details["reasons"])
    assert len([e for e in denied if e.request.get("path") == "/v1/users"]) == 1
