"""The roles, bindings, resource-rules and authz-check endpoints, protected by the same engine."""

from __future__ import annotations

from pathlib import Path

from bastion.core.model import AuditQuery, Principal, PrincipalKind
from tests.authz.api_world import ACTOR, API, ApiWorld, api_world


def add_user(world: ApiWorld, name: str, role: str | None, scopes: list[str]) -> str:
    services = world.services
    with services.storage.transaction() as tx:
        tenant = tx.tenants.get_by_name("default")
        tx.principals.create(
            Principal(f"usr-{name}", tenant.id, PrincipalKind.USER, name, services.clock.now())
        )
    if role:
        world.client.post(
            f"{API}/bindings",
            headers=world.headers("default"),
            json={"subject": {"type": "user", "name": name}, "role": role},
        ).raise_for_status()
    key = services.api_keys.create(
        tenant_name="default",
        owner_name=name,
        name=f"k-{name}",
        scopes=scopes,
        expires_at=None,
        actor=ACTOR,
    ).secret
    world.keys[name] = key
    return key


def test_role_lifecycle_and_cycle_rejected(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        h = world.headers("default")
        created = world.client.post(
            f"{API}/roles",
            headers=h,
            json={"name": "auditor", "permissions": ["audit:read"], "inherits": ["viewer"]},
        )
        assert created.status_code == 201, created.text
        assert "patterns:read" not in created.json()["effective"]
        assert "*:read" in created.json()["effective"]
        child = world.client.post(
            f"{API}/roles", headers=h, json={"name": "lead", "inherits": ["auditor"]}
        )
        assert child.status_code == 201
        cycle = world.client.put(f"{API}/roles/auditor", headers=h, json={"inherits": ["lead"]})
        assert cycle.status_code == 400
        assert "inheritance cycle" in cycle.json()["detail"]
        builtin = world.client.post(f"{API}/roles", headers=h, json={"name": "admin"})
        assert builtin.status_code == 409
        in_use = world.client.delete(f"{API}/roles/auditor", headers=h)
        assert in_use.status_code == 409
        assert world.client.delete(f"{API}/roles/lead", headers=h).status_code == 204
        assert world.client.get(f"{API}/roles/lead", headers=h).status_code == 404


def test_binding_through_api_grants_at_once_and_unbinding_revokes(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        key = add_user(world, "dev@example.com", None, ["admin"])
        me = {"Authorization": f"Bearer {key}"}
        assert world.client.get(f"{API}/roles", headers=me).status_code == 403
        made = world.client.post(
            f"{API}/bindings",
            headers=world.headers("default"),
            json={"subject": {"type": "user", "name": "dev@example.com"}, "role": "viewer"},
        )
        assert made.status_code == 201
        assert world.client.get(f"{API}/roles", headers=me).status_code == 200
        gone = world.client.delete(
            f"{API}/bindings/{made.json()['id']}", headers=world.headers("default")
        )
        assert gone.status_code == 204
        assert world.client.get(f"{API}/roles", headers=me).status_code == 403
        with world.services.storage.transaction() as tx:
            actions = [e.action for e in tx.audit.query(AuditQuery(limit=1000))]
        assert "binding.create" in actions and "binding.delete" in actions


def test_binder_cannot_hand_out_more_than_it_holds(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        world.client.post(
            f"{API}/roles",
            headers=world.headers("default"),
            json={"name": "binder", "permissions": ["bindings:create", "roles:read"]},
        ).raise_for_status()
        add_user(world, "binder@example.com", "binder", ["admin"])
        attempt = world.client.post(
            f"{API}/bindings",
            headers=world.headers("binder@example.com"),
            json={"subject": {"type": "user", "name": "binder@example.com"}, "role": "admin"},
        )
        assert attempt.status_code == 403
        with world.services.storage.transaction() as tx:
            tenant = tx.tenants.get_by_name("default")
            tx.principals.create(
                Principal(
                    "usr-other",
                    tenant.id,
                    PrincipalKind.USER,
                    "other@example.com",
                    world.services.clock.now(),
                )
            )
        modest = world.client.post(
            f"{API}/bindings",
            headers=world.headers("binder@example.com"),
            json={"subject": {"type": "user", "name": "other@example.com"}, "role": "binder"},
        )
        assert modest.status_code == 201


def test_scoped_key_cannot_define_a_wider_role(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        add_user(world, "ops@example.com", "admin", ["roles:create", "patterns:read"])
        wide = world.client.post(
            f"{API}/roles",
            headers=world.headers("ops@example.com"),
            json={"name": "wide", "permissions": ["patterns:delete"]},
        )
        assert wide.status_code == 403
        narrow = world.client.post(
            f"{API}/roles",
            headers=world.headers("ops@example.com"),
            json={"name": "narrow", "permissions": ["patterns:read"]},
        )
        assert narrow.status_code == 201


def test_resource_rule_through_api_restricts_admin(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        h = world.headers("default")
        ghost = world.client.post(
            f"{API}/resource-rules",
            headers=h,
            json={"resource": "patterns/secret", "allowedUsers": ["alice@example.com"]},
        )
        assert ghost.status_code == 400
        assert "no user 'alice@example.com'" in ghost.json()["detail"]
        world.client.post(f"{API}/users", headers=h, json={"name": "alice@example.com"})
        rule = world.client.post(
            f"{API}/resource-rules",
            headers=h,
            json={"resource": "patterns/secret", "allowedUsers": ["alice@example.com"]},
        )
        assert rule.status_code == 201
        single = world.client.post(
            f"{API}/authz/check",
            headers=h,
            json={
                "principal": "admin@example.com",
                "action": "read",
                "resource": "patterns/secret",
            },
        )
        assert single.status_code == 200
        assert single.json()["effect"] == "deny"
        assert any("admits neither" in r for r in single.json()["reasons"])
        world.client.delete(f"{API}/resource-rules/{rule.json()['id']}", headers=h)
        batch = world.client.post(
            f"{API}/authz/check",
            headers=h,
            json={
                "requests": [
                    {
                        "principal": "admin@example.com",
                        "action": "read",
                        "resource": "patterns/secret",
                    },
                    {
                        "principal": "admin@example.com",
                        "action": "read",
                        "resource": "patterns",
                        "scopes": ["agents:read"],
                    },
                ]
            },
        )
        assert [r["effect"] for r in batch.json()["results"]] == ["allow", "deny"]
        with world.services.storage.transaction() as tx:
            checks = tx.audit.query(AuditQuery(action="authz.check", limit=10))
        assert [e.details["effect"] for e in checks] == ["deny", "allow", "deny"]


def test_check_of_unknown_principal_is_404(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        response = world.client.post(
            f"{API}/authz/check",
            headers=world.headers("default"),
            json={"principal": "ghost@example.com", "action": "read", "resource": "patterns"},
        )
        assert response.status_code == 404


def test_policy_endpoints_for_the_operators_tenant_only(tmp_path: Path) -> None:
    (tmp_path / "main.cedar").write_text(
        '@id("no-delete")\nforbid(principal, action == Action::"delete", resource);\n'
    )
    extra = f"  policies:\n    files: ['{tmp_path}/main.cedar']\n    reloadInterval: 1h\n"
    with api_world(tmp_path, extra) as world:
        h = world.headers("default")
        listed = world.client.get(f"{API}/policies", headers=h)
        assert listed.status_code == 200
        assert [p["name"] for p in listed.json()["policies"]] == ["no-delete"]
        assert world.client.get(f"{API}/policies", headers=world.headers("beta")).status_code == 403
        bad = world.client.post(
            f"{API}/policies/validate",
            headers=h,
            json={"text": "permit(principal, action, resource) when { principal.nope };"},
        )
        assert bad.json()["valid"] is False
        (tmp_path / "main.cedar").write_text("permit(principal, action")
        reloaded = world.client.post(f"{API}/policies/reload", headers=h)
        assert reloaded.status_code == 200
        assert reloaded.json()["policies"][0]["name"] == "no-delete"
        assert "does not parse" in reloaded.json()["lastError"]
        schema = world.client.get(f"{API}/policies/schema", headers=h).json()
        assert "User" in schema[""]["entityTypes"]


def test_policy_reads_are_audited_as_policy_read(tmp_path: Path) -> None:
    (tmp_path / "main.cedar").write_text('@id("p")\npermit(principal, action, resource);\n')
    extra = f"  policies:\n    files: ['{tmp_path}/main.cedar']\n    reloadInterval: 1h\n"
    with api_world(tmp_path, extra) as world:
        assert world.client.get(f"{API}/policies", headers=world.headers("default")).is_success
        with world.services.storage.transaction() as tx:
            actions = {e.action for e in tx.audit.query(AuditQuery(limit=1000))}
    assert "policy.read" in actions
    assert "policie.read" not in actions


def test_binding_for_a_subject_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        h = world.headers("default")
        for kind in ("user", "group", "serviceAccount", "agent"):
            ghost = world.client.post(
                f"{API}/bindings",
                headers=h,
                json={"subject": {"type": kind, "name": "ghost@example.com"}, "role": "viewer"},
            )
            assert ghost.status_code == 400, (kind, ghost.text)
            assert ghost.headers["content-type"] == "application/problem+json"
            assert "'ghost@example.com' in tenant 'default'" in ghost.json()["detail"]
        listed = world.client.get(f"{API}/bindings", headers=h).json()
        assert "ghost@example.com" not in {b["subject"]["name"] for b in listed}


def test_deleting_a_user_through_the_api_deletes_its_bindings(tmp_path: Path) -> None:
    with api_world(tmp_path) as world:
        h = world.headers("default")
        made = world.client.post(f"{API}/users", headers=h, json={"name": "bob@example.com"})
        assert made.status_code == 201, made.text
        bound = world.client.post(
            f"{API}/bindings",
            headers=h,
            json={"subject": {"type": "user", "name": "bob@example.com"}, "role": "admin"},
        )
        assert bound.status_code == 201
        assert world.client.delete(f"{API}/users/bob@example.com", headers=h).is_success
        listed = world.client.get(f"{API}/bindings", headers=h).json()
        assert bound.json()["id"] not in {b["id"] for b in listed}
        again = world.client.post(f"{API}/users", headers=h, json={"name": "bob@example.com"})
        assert again.status_code == 201
        check = world.client.post(
            f"{API}/authz/check",
            headers=h,
            json={"principal": "bob@example.com", "action": "delete", "resource": "users"},
        )
        assert check.status_code == 200, check.text
        assert check.json()["allowed"] is False
