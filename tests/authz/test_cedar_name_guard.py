"""Cedar policies grant by name, and their names carry no tenant: the admin API's escalation
guard holds whoever would make someone one of a name a policy names (or unmake them) to what
the policy decides, which only the platform tenant's admins hold."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from httpx2 import Response

from bastion.errors import AuthorizationError
from bastion.gateway.api.authz_guard import ensure_within, holdings
from tests.authz.api_world import ACTOR, API, ApiWorld, api_world

POLICIES = """
@id("contractors-read")
permit(principal in Group::"contractors", action == Action::"read", resource is reports);
@id("auditors-read")
permit(principal in Role::"auditors", action == Action::"read", resource is reports);
@id("boss-read")
permit(principal == User::"boss@example.com", action == Action::"read", resource is reports);
@id("bots-read")
permit(principal, action == Action::"read", resource is reports)
when { principal.name like "bot-*" };
@id("suspended")
forbid(principal in Group::"suspended", action, resource is reports);
"""
DELEGATE = "del@example.com"
PASSWORD = "Correct-Horse-Battery-Staple-9"


@contextmanager
def policy_world(tmp_path: Path) -> Iterator[ApiWorld]:
    (tmp_path / "main.cedar").write_text(POLICIES)
    extra = (
        f"  policies:\n    files: ['{tmp_path}/main.cedar']\n    reloadInterval: 1h\n"
        "gateway:\n  routes:\n    - {method: GET, path: /r, resource: reports, action: read}\n"
    )
    with api_world(tmp_path, extra) as world:
        yield world


def delegate(world: ApiWorld, *permissions: str) -> dict[str, str]:
    """A user of the platform tenant holding only ``permissions``, and its key's headers."""
    admin = world.headers("default")
    client = world.client
    role = {"name": "delegate", "permissions": list(permissions)}
    client.post(f"{API}/roles", headers=admin, json=role).raise_for_status()
    client.post(f"{API}/users", headers=admin, json={"name": DELEGATE}).raise_for_status()
    binding = {"subject": {"type": "user", "name": DELEGATE}, "role": "delegate"}
    client.post(f"{API}/bindings", headers=admin, json=binding).raise_for_status()
    key = world.services.api_keys.create(
        tenant_name="default",
        owner_name=DELEGATE,
        name="delegate",
        scopes=["admin"],
        expires_at=None,
        actor=ACTOR,
    )
    return {"Authorization": f"Bearer {key.secret}"}


def reads_reports(world: ApiWorld, principal: str) -> bool:
    check = world.client.post(
        f"{API}/authz/check",
        headers=world.headers("default"),
        json={"principal": principal, "action": "read", "resource": "reports/q3"},
    )
    assert check.status_code == 200, check.text
    allowed: bool = check.json()["allowed"]
    return allowed


def refused(response: Response) -> bool:
    problem = response.headers["content-type"] == "application/problem+json"
    return response.status_code == 403 and problem


def test_delegate_cannot_gain_a_cedar_permit_by_creating_its_named_group(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        me = delegate(world, "groups:create", "groups:update", "groups:read")
        assert not reads_reports(world, DELEGATE)
        assert refused(world.client.post(f"{API}/groups", headers=me, json={"name": "contractors"}))
        spelled = world.client.post(f"{API}/groups", headers=me, json={"name": "Contractors"})
        assert refused(spelled)  # the same group once canonical
        made = world.client.post(
            f"{API}/groups", headers=world.headers("default"), json={"name": "contractors"}
        )
        assert made.status_code == 201
        joined = world.client.put(f"{API}/groups/contractors/members/{DELEGATE}", headers=me)
        assert refused(joined)
        assert not reads_reports(world, DELEGATE)
        own = world.client.post(f"{API}/groups", headers=me, json={"name": "readers"})
        assert own.status_code == 201  # a name no policy names is the delegate's to use


def test_delegate_cannot_gain_a_cedar_permit_through_a_custom_role(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        me = delegate(world, "roles:create", "roles:read", "bindings:create")
        assert refused(world.client.post(f"{API}/roles", headers=me, json={"name": "auditors"}))
        admin = world.headers("default")
        world.client.post(
            f"{API}/roles", headers=admin, json={"name": "auditors"}
        ).raise_for_status()
        heir = world.client.post(
            f"{API}/roles", headers=me, json={"name": "junior", "inherits": ["auditors"]}
        )
        assert refused(heir)  # holders of junior would be in Role::"auditors" too
        assert not reads_reports(world, DELEGATE)


def test_delegate_cannot_bind_or_unbind_a_role_a_cedar_policy_names(tmp_path: Path) -> None:
    """``auditors`` gives no permission of its own; ``Role::"auditors"`` in a permit does."""
    with policy_world(tmp_path) as world:
        me = delegate(world, "bindings:create", "bindings:delete", "bindings:read")
        admin = world.headers("default")
        world.client.post(
            f"{API}/roles", headers=admin, json={"name": "auditors"}
        ).raise_for_status()
        to_auditors = {"subject": {"type": "user", "name": DELEGATE}, "role": "auditors"}
        assert refused(world.client.post(f"{API}/bindings", headers=me, json=to_auditors))
        assert not reads_reports(world, DELEGATE)
        world.client.post(f"{API}/users", headers=admin, json={"name": "aud@example.com"})
        theirs = {"subject": {"type": "user", "name": "aud@example.com"}, "role": "auditors"}
        made = world.client.post(f"{API}/bindings", headers=admin, json=theirs)
        assert made.status_code == 201
        gone = world.client.delete(f"{API}/bindings/{made.json()['id']}", headers=me)
        assert refused(gone)  # taking it away is deciding what the policy gives, too
        assert reads_reports(world, "aud@example.com")
        missing = world.client.delete(f"{API}/bindings/rb_nothing", headers=me)
        assert missing.status_code == 404


def test_delegate_cannot_take_a_principal_name_a_cedar_permit_names(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        me = delegate(world, "users:create", "users:update", "serviceaccounts:create")
        boss = {"name": "boss@example.com", "password": PASSWORD}
        assert refused(world.client.post(f"{API}/users", headers=me, json=boss))
        bare = world.client.post(f"{API}/users", headers=me, json={"name": "boss@example.com"})
        assert bare.status_code == 201  # no credential: nothing usable yet
        password = world.client.put(
            f"{API}/users/boss@example.com/password", headers=me, json={"password": PASSWORD}
        )
        assert refused(password)
        bot = world.client.post(f"{API}/serviceaccounts", headers=me, json={"name": "bot-7"})
        assert refused(bot)  # principal.name like "bot-*"
        ci = world.client.post(f"{API}/serviceaccounts", headers=me, json={"name": "ci"})
        assert ci.status_code == 201


def test_delegate_cannot_lift_a_cedar_forbid_by_leaving_its_named_group(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        me = delegate(world, "groups:update", "groups:delete", "groups:read")
        admin = world.headers("default")
        world.client.post(f"{API}/groups", headers=admin, json={"name": "suspended"})
        world.client.put(f"{API}/groups/suspended/members/{DELEGATE}", headers=admin)
        left = world.client.delete(f"{API}/groups/suspended/members/{DELEGATE}", headers=me)
        assert refused(left)
        assert refused(world.client.delete(f"{API}/groups/suspended", headers=me))
        group = world.client.get(f"{API}/groups/suspended", headers=me).json()
        assert [m["name"] for m in group["members"]] == [DELEGATE]


def test_tenant_admin_cannot_use_a_name_a_cedar_policy_names(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        beta = world.headers("beta")  # admin (*:*) of a tenant that is not the platform's
        made = world.client.post(f"{API}/groups", headers=beta, json={"name": "contractors"})
        assert refused(made)
        assert world.client.post(f"{API}/groups", headers=beta, json={"name": "eng"}).is_success


def test_platform_admin_may_use_a_name_a_cedar_policy_names(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        admin = world.headers("default")
        made = world.client.post(f"{API}/groups", headers=admin, json={"name": "contractors"})
        assert made.status_code == 201
        world.client.post(f"{API}/users", headers=admin, json={"name": "temp@example.com"})
        joined = world.client.put(
            f"{API}/groups/contractors/members/temp@example.com", headers=admin
        )
        assert joined.status_code == 200
        assert reads_reports(world, "temp@example.com")


def test_guard_refusal_names_the_cedar_policy(tmp_path: Path) -> None:
    with policy_world(tmp_path) as world:
        guard = holdings(world.services)
        with pytest.raises(AuthorizationError, match="contractors-read"):
            guard.of_names(tenant_name="beta", groups=["contractors"])
        reach = guard.of_names(tenant_name="default", groups=["contractors"])
        assert [str(p) for p in reach] == ["*:* (Cedar policy contractors-read names it)"]
        assert guard.of_names(tenant_name="default", groups=["engineering"]) == ()
        key = delegate(world, "groups:create")["Authorization"].removeprefix("Bearer ")
        caller = world.services.access.identify(key)
        with pytest.raises(AuthorizationError, match="Cedar policy contractors-read"):
            ensure_within(caller, reach, "creating group contractors")


def test_agent_cannot_register_under_a_name_a_cedar_policy_names(tmp_path: Path) -> None:
    """The token's holder chooses the name: ``bot-*`` would bring the bots-read permit."""
    with policy_world(tmp_path) as world:
        admin = world.headers("default")
        token = world.client.post(
            f"{API}/agents/tokens", headers=admin, json={"capabilities": ["classification"]}
        )
        bearer = {"Authorization": f"Bearer {token.json()['token']}"}
        taken = world.client.post(f"{API}/agents/register", headers=bearer, json={"name": "Bot-9"})
        assert taken.status_code == 409 and "Cedar policy" in taken.json()["detail"]
        with world.services.storage.transaction() as tx:
            [refusal] = [e for e in tx.audit.iterate() if e.action == "agent.register"]
        assert refusal.details["reservedBy"] == "cedar:bots-read"
        ok = world.client.post(f"{API}/agents/register", headers=bearer, json={"name": "crawler"})
        assert ok.status_code == 201  # the token was left unused
