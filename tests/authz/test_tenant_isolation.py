"""Tenant isolation through the admin API: randomised calls by tenant A's admin never read,
list, change or learn of (no 403-versus-404 difference) any object of tenant B."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.authz.api_world import API, ApiWorld, api_world

SECRET = "zq-beta"  # every name of tenant B carries it; it must never reach tenant A


def seed_beta(world: ApiWorld) -> dict[str, str]:
    h = world.headers("beta")
    c = world.client
    c.post(f"{API}/roles", headers=h, json={"name": f"{SECRET}-role", "permissions": ["x:read"]})
    c.post(f"{API}/users", headers=h, json={"name": f"{SECRET}@b.example"}).raise_for_status()
    binding = c.post(
        f"{API}/bindings",
        headers=h,
        json={"subject": {"type": "user", "name": f"{SECRET}@b.example"}, "role": "viewer"},
    ).json()
    rule = c.post(
        f"{API}/resource-rules",
        headers=h,
        json={"resource": f"patterns/{SECRET}", "allowedUsers": [f"{SECRET}@b.example"]},
    ).json()
    return {"role": f"{SECRET}-role", "binding": binding["id"], "rule": rule["id"]}


def snapshot(world: ApiWorld) -> list[Any]:
    h = world.headers("beta")
    return [
        world.client.get(f"{API}/{kind}", headers=h).json()
        for kind in ("roles", "bindings", "resource-rules")
    ]


def request(world: ApiWorld, who: str, op: str, kind: str, ref: str) -> tuple[int, str]:
    h = world.headers(who)
    url = f"{API}/{kind}/{ref}"
    body: dict[str, Any]
    if op == "get":
        response = world.client.get(url, headers=h)
    elif op == "delete":
        response = world.client.delete(url, headers=h)
    elif op == "update" and kind == "roles":
        response = world.client.put(url, headers=h, json={"permissions": ["patterns:read"]})
    elif op == "create":
        body = {
            "roles": {"name": ref, "permissions": ["patterns:read"]},
            "bindings": {"subject": {"type": "user", "name": ref}, "role": ref},
            "resource-rules": {"resource": f"patterns/{ref}", "allowedUsers": [ref]},
        }[kind]
        response = world.client.post(f"{API}/{kind}", headers=h, json=body)
    elif op == "check":
        response = world.client.post(
            f"{API}/authz/check",
            headers=h,
            json={"principal": ref, "action": "read", "resource": f"patterns/{ref}"},
        )
    else:
        response = world.client.get(f"{API}/{kind}", headers=h)
    text = re.sub(r'"requestId": ?"[^"]*"', "", response.text)
    # A miss names what the caller typed ("no role 'x' in tenant 'default'"): the caller's own
    # words, not tenant B's, so they are set aside; everything else must match to the byte.
    return response.status_code, text.replace(ref, "<ref>")


KINDS = {"role": "roles", "binding": "bindings", "rule": "resource-rules"}
OPS = st.sampled_from(["get", "delete", "update", "create", "check", "list"])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=st.lists(st.tuples(OPS, st.sampled_from(sorted(KINDS))), min_size=1, max_size=6))
def test_tenant_a_never_learns_of_tenant_b(tmp_path: Path, calls: list[tuple[str, str]]) -> None:
    home = tmp_path / f"w{abs(hash(tuple(calls)))}"
    home.mkdir(exist_ok=True)
    (home / "b.db").unlink(missing_ok=True)
    with api_world(home) as world:
        beta = seed_beta(world)
        before = snapshot(world)
        for op, kind in calls:
            for who in ("default", "viewer-less"):
                if who not in world.keys:
                    world.keys[who] = world.services.api_keys.create(
                        tenant_name="default",
                        owner_name=None,
                        name="narrow",
                        scopes=["whoami:read"],
                        expires_at=None,
                        actor={"type": "operator", "id": "t"},
                    ).secret
                theirs = request(world, who, op, KINDS[kind], beta[kind])
                ref = beta[kind]
                other = ref.replace(SECRET, "nx-no") if SECRET in ref else ref[:-4] + "0000"
                absent = request(world, who, op, KINDS[kind], other)
                if op == "create":  # B's name is free in A: same answer as any free name
                    assert theirs[0] == absent[0], (op, kind)
                    if kind == "role":  # A's own new roles: remove them again
                        for name in (ref, other):
                            world.client.delete(f"{API}/roles/{name}", headers=world.headers(who))
                    continue
                assert SECRET not in theirs[1]
                assert "'beta'" not in theirs[1]
                # Only roles are updated; "update" of another kind reads the list, which may
                # hold both names A created, in an order that differs with the name.
                listed = op == "list" or (op == "update" and kind != "role")
                if not listed:
                    assert theirs == absent, (op, kind)
        assert snapshot(world) == before
