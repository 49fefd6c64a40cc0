"""``security.rbac.defaultRole`` is held by whoever has no binding in force, so it is handed
out too: by a registration token without roles (its agent gets it), and by a removal that can
leave someone with no binding (a group member, a binding, a group or a custom role removed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.authz.api_world import ApiWorld, api_world
from tests.gateway.api.test_escalation_guard import call, limited

DEFAULT_VIEWER = "  rbac:\n    defaultRole: viewer\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world(tmp_path, DEFAULT_VIEWER) as built:
        yield built


def test_a_registration_token_without_roles_cannot_hand_out_the_default_role(
    world: ApiWorld,
) -> None:
    limited(world, "agentops@example.com", ["agents:create"], ["agents:create"])
    body = {"capabilities": ["*:*"]}
    minted = call(world, "POST", "/agents/tokens", "agentops@example.com", json=body)
    assert minted.status_code == 403
    assert "default role viewer" in minted.json()["detail"]
    assert call(world, "GET", "/agents/tokens", "default").json() == []
    # Whoever holds what the default role gives may.
    assert call(world, "POST", "/agents/tokens", "default", json=body).status_code == 201


def test_removing_a_group_member_cannot_drop_them_to_the_default_role(world: ApiWorld) -> None:
    member = "/groups/contractors/members/con@example.com"
    confined = {"subject": {"type": "group", "name": "contractors"}, "role": "narrow"}
    for method, path, body in (
        ("POST", "/users", {"name": "con@example.com"}),
        ("POST", "/roles", {"name": "narrow", "permissions": ["patterns:read"]}),
        ("POST", "/groups", {"name": "contractors"}),
        ("POST", "/bindings", confined),
        ("PUT", member, None),
    ):
        done = call(world, method, path, "default", json=body)
        assert done.status_code < 300, done.text
    limited(world, "gm@example.com", ["groups:update"], ["groups:update"])
    removed = call(world, "DELETE", member, "gm@example.com")
    assert removed.status_code == 403
    assert "default role viewer" in removed.json()["detail"]
    kept = call(world, "GET", "/groups/contractors", "default").json()
    assert [m["name"] for m in kept["members"]] == ["con@example.com"]
    # Whoever holds what the default role gives may.
    assert call(world, "DELETE", member, "default").status_code == 200
