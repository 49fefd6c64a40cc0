"""Resource rules admit by name (a user in ``allowedUsers``, a holder of a role in
``allowedRoles``), so whatever makes someone a holder of such a role, or gives control of a
principal a rule admits, hands out the rule's admission: only a caller the rule admits, or one
holding ``*:*``, may. Through a binding, a group, a role inheriting another, another user's
key, or a service account's credential; and deleting the rule hands it to everyone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.authz.api_world import ApiWorld, api_world
from tests.gateway.api.test_escalation_guard import call, limited

RESOURCE = "patterns/sensitive-analysis"
REFUSED = f"on {RESOURCE}, which does not admit the caller"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    """A tenant whose ``security-team`` role is the only one a rule on RESOURCE admits (and
    ``patterns:*`` holders otherwise may execute anything)."""
    with api_world(tmp_path) as built:
        role = {"name": "security-team", "permissions": ["patterns:execute"]}
        as_admin(built, "POST", "/roles", role)
        rule = {"resource": RESOURCE, "allowedRoles": ["security-team"], "actions": ["execute"]}
        as_admin(built, "POST", "/resource-rules", rule)
        yield built


def as_admin(world: ApiWorld, method: str, path: str, body: Any = None) -> None:
    answer = call(world, method, path, "default", json=body)
    assert answer.status_code < 300, answer.text


def binding(kind: str, name: str, role: str) -> dict[str, Any]:
    return {"subject": {"type": kind, "name": name}, "role": role}


def executes(world: ApiWorld, principal: str) -> bool:
    """Whether ``principal`` may execute RESOURCE now (resource rules included)."""
    body = {"principal": principal, "action": "execute", "resource": RESOURCE}
    answer = call(world, "POST", "/authz/check", "default", json=body)
    assert answer.status_code == 200, answer.text
    allowed: bool = answer.json()["allowed"]
    return allowed


def refused_for_the_rule(response: Any) -> bool:
    """A 403 from the escalation guard, saying the rule on RESOURCE does not admit the caller."""
    return response.status_code == 403 and REFUSED in response.json().get("detail", "")


def test_binding_oneself_to_a_role_a_rule_admits_is_refused(world: ApiWorld) -> None:
    limited(world, "ops@example.com", ["patterns:*", "bindings:create"], ["admin"])
    assert not executes(world, "ops@example.com")
    body = binding("user", "ops@example.com", "security-team")
    bound = call(world, "POST", "/bindings", "ops@example.com", json=body)
    assert refused_for_the_rule(bound), bound.text
    assert not executes(world, "ops@example.com")


def test_joining_a_group_bound_to_a_role_a_rule_admits_is_refused(world: ApiWorld) -> None:
    as_admin(world, "POST", "/groups", {"name": "sec"})
    as_admin(world, "POST", "/bindings", binding("group", "sec", "security-team"))
    limited(world, "g@example.com", ["patterns:*", "groups:update"], ["admin"])
    joined = call(world, "PUT", "/groups/sec/members/g@example.com", "g@example.com")
    assert refused_for_the_rule(joined), joined.text
    assert not executes(world, "g@example.com")


def test_a_role_inheriting_a_role_a_rule_admits_is_refused(world: ApiWorld) -> None:
    held = ["patterns:*", "roles:create", "roles:read", "bindings:create"]
    limited(world, "rr@example.com", held, ["admin"])
    mine = {"name": "mine", "inherits": ["security-team"]}
    created = call(world, "POST", "/roles", "rr@example.com", json=mine)
    assert refused_for_the_rule(created), created.text
    # Nor may it bind itself to such a role someone else made.
    as_admin(world, "POST", "/roles", mine)
    body = binding("user", "rr@example.com", "mine")
    bound = call(world, "POST", "/bindings", "rr@example.com", json=body)
    assert refused_for_the_rule(bound), bound.text
    assert not executes(world, "rr@example.com")


def test_rotating_the_key_of_a_user_a_rule_names_is_refused(world: ApiWorld) -> None:
    limited(world, "alice@example.com", ["patterns:execute"], ["patterns:execute"])
    limited(world, "km@example.com", ["patterns:*", "apikeys:*"], ["admin"])
    rule = {"resource": "patterns/alice-only", "allowedUsers": ["alice@example.com"]}
    as_admin(world, "POST", "/resource-rules", rule)
    keys = call(world, "GET", "/apikeys", "km@example.com").json()
    victim = next(k for k in keys if k["owner"] == "alice@example.com")
    # km holds every permission alice's key and alice hold, but is not alice.
    stolen = call(world, "POST", f"/apikeys/{victim['id']}/rotate", "km@example.com")
    assert stolen.status_code == 403
    assert "on patterns/alice-only, which does not admit the caller" in stolen.json()["detail"]
    assert "secret" not in stolen.text
    still = call(world, "GET", "/apikeys", "default").json()
    assert [k["name"] for k in still if k["owner"] == "alice@example.com"] == [victim["name"]]


def test_a_credential_for_a_service_account_a_rule_admits_is_refused(world: ApiWorld) -> None:
    as_admin(world, "POST", "/serviceaccounts", {"name": "sec-bot"})
    as_admin(world, "POST", "/bindings", binding("serviceAccount", "sec-bot", "security-team"))
    limited(world, "km@example.com", ["patterns:*", "apikeys:create"], ["admin"])
    body = {"name": "mine", "scopes": ["patterns:execute"]}
    path = "/serviceaccounts/sec-bot/credentials"
    minted = call(world, "POST", path, "km@example.com", json=body)
    assert refused_for_the_rule(minted), minted.text
    assert "secret" not in minted.text
    # An account no rule admits may have a credential within the caller's holdings.
    as_admin(world, "POST", "/serviceaccounts", {"name": "ci"})
    plain = call(world, "POST", "/serviceaccounts/ci/credentials", "km@example.com", json=body)
    assert plain.status_code == 201, plain.text


def test_a_caller_the_rule_admits_may_bind_others_to_its_role(world: ApiWorld) -> None:
    limited(world, "lead@example.com", ["patterns:*", "bindings:create"], ["admin"])
    as_admin(world, "POST", "/bindings", binding("user", "lead@example.com", "security-team"))
    as_admin(world, "POST", "/users", {"name": "bob@example.com"})
    body = binding("user", "bob@example.com", "security-team")
    bound = call(world, "POST", "/bindings", "lead@example.com", json=body)
    assert bound.status_code == 201, bound.text
    assert executes(world, "bob@example.com")


def test_an_admin_holding_everything_may_hand_out_what_a_rule_admits(world: ApiWorld) -> None:
    limited(world, "ops@example.com", ["patterns:*"], ["admin"])
    as_admin(world, "POST", "/bindings", binding("user", "ops@example.com", "security-team"))
    assert executes(world, "ops@example.com")


def _rule_id(world: ApiWorld) -> str:
    answer = call(world, "GET", "/resource-rules", "default")
    [rule] = [r for r in answer.json() if r["resource"] == RESOURCE]
    return str(rule["id"])


def test_lifting_a_rule_that_does_not_admit_the_caller_is_refused(world: ApiWorld) -> None:
    """Deleting the rule would let its deleter (who holds ``patterns:*``) in: a way round it."""
    limited(world, "lift@example.com", ["patterns:*", "rules:delete", "rules:read"], ["admin"])
    rule_id = _rule_id(world)
    lifted = call(world, "DELETE", f"/resource-rules/{rule_id}", "lift@example.com")
    assert refused_for_the_rule(lifted), lifted.text
    assert not executes(world, "lift@example.com")
    assert _rule_id(world) == rule_id


def test_a_caller_the_rule_admits_may_lift_it(world: ApiWorld) -> None:
    held = ["patterns:*", "rules:delete", "rules:read"]
    limited(world, "sec@example.com", held, ["admin"])
    as_admin(world, "POST", "/bindings", binding("user", "sec@example.com", "security-team"))
    lifted = call(world, "DELETE", f"/resource-rules/{_rule_id(world)}", "sec@example.com")
    assert lifted.status_code == 204, lifted.text
