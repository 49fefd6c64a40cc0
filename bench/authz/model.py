"""The benchmark's access model, generated from a seed, and its three encodings: bastion
(compiled per-principal access), pycasbin (policy lines) and Cedar (policies + entities)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
ACTIONS = ("read", "create", "update", "delete", "execute", "manage")
SCOPE_CHOICES = ("admin", "*:read", "{r}:read", "{r}:write", "{r}:*", "{r}:{a}")


@dataclass
class Model:
    resources: list[str]
    roles: dict[str, tuple[list[tuple[str, str]], list[str]]]  # name → (perms, inherits)
    users: list[str]
    groups: dict[str, list[str]]  # group → members
    user_groups: dict[str, list[str]]
    bindings: list[tuple[str, str, str, datetime | None]]  # (kind, subject, role, expires)
    credentials: list[list[str] | None] = field(default_factory=list)


def generate(
    *, users: int, groups: int, roles: int, bindings: int, resources: int, seed: int = 7
) -> Model:
    rng = random.Random(seed)
    names = [f"res{i:02d}" for i in range(resources)]
    role_defs: dict[str, tuple[list[tuple[str, str]], list[str]]] = {}
    depth: dict[str, int] = {}
    for i in range(roles):
        perms = [(rng.choice(names), rng.choice(ACTIONS)) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.05:
            perms.append((rng.choice(names), "*"))
        shallow = [r for r in role_defs if depth[r] < 5]
        inherits = rng.sample(shallow, k=min(len(shallow), rng.choice((0, 1, 1, 2))))
        name = f"role{i:03d}"
        depth[name] = 1 + max((depth[p] for p in inherits), default=0)
        role_defs[name] = (perms, inherits)
    user_names = [f"user{i:06d}@example.com" for i in range(users)]
    group_names = [f"group{i:04d}" for i in range(groups)]
    members: dict[str, list[str]] = {g: [] for g in group_names}
    user_groups: dict[str, list[str]] = {}
    for user in user_names:
        mine = rng.sample(group_names, k=rng.randint(1, 2))
        user_groups[user] = mine
        for group in mine:
            members[group].append(user)
    role_names = list(role_defs)
    found: list[tuple[str, str, str, datetime | None]] = []
    group_share = bindings // 10
    for _ in range(bindings - group_share):
        expires = NOW + timedelta(days=rng.randint(1, 90)) if rng.random() < 0.1 else None
        found.append(("user", rng.choice(user_names), rng.choice(role_names), expires))
    for _ in range(group_share):
        found.append(("group", rng.choice(group_names), rng.choice(role_names), None))
    credentials: list[list[str] | None] = [None]
    for _ in range(999):
        scopes = []
        for _ in range(rng.randint(1, 4)):
            pattern = rng.choice(SCOPE_CHOICES)
            scopes.append(pattern.format(r=rng.choice(names), a=rng.choice(ACTIONS)))
        credentials.append(scopes)
    return Model(names, role_defs, user_names, members, user_groups, found, credentials)


def requests(model: Model, count: int, *, seed: int = 11) -> list[tuple[str, str, str, int]]:
    """(user, resource, action, credential index); credential 0 is unscoped."""
    rng = random.Random(seed)
    return [
        (
            rng.choice(model.users),
            rng.choice(model.resources),
            rng.choice(ACTIONS),
            0 if rng.random() < 0.5 else rng.randrange(1, len(model.credentials)),
        )
        for _ in range(count)
    ]


def expand_scope(scope: str) -> list[tuple[str, str]]:
    if scope == "admin":
        return [("*", "*")]
    resource, action = scope.split(":")
    if action == "write":
        return [(resource, "create"), (resource, "update")]
    return [(resource, action)]


# -- pycasbin -----------------------------------------------------------------------------

CASBIN_MODEL = """
[request_definition]
r = sub, obj, act, cred

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && (r.obj == p.obj || p.obj == "*") && (r.act == p.act || p.act == "*") \
&& (r.cred == "none" || g2(r.cred, r.obj + ":" + r.act) || g2(r.cred, r.obj + ":*") \
|| g2(r.cred, "*:" + r.act) || g2(r.cred, "*:*"))
"""


def casbin_lines(model: Model) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(p, g, g2) rules: casbin has no binding expiry, so only bindings active now."""
    p = [[role, r, a] for role, (perms, _) in model.roles.items() for r, a in perms]
    g = [[child, parent] for child, (_, inherits) in model.roles.items() for parent in inherits]
    for _kind, subject, role, expires in model.bindings:
        if expires is None or expires > NOW:
            g.append([subject, role])
    g += [[user, group] for user, mine in model.user_groups.items() for group in mine]
    g2 = [
        [f"cred{i}", f"{r}:{a}"]
        for i, scopes in enumerate(model.credentials)
        if scopes is not None
        for s in scopes
        for r, a in expand_scope(s)
    ]
    return p, g, g2


# -- Cedar --------------------------------------------------------------------------------


def cedar_rbac_policies(model: Model) -> str:
    lines = []
    for role, (perms, _) in model.roles.items():
        for resource, action in perms:
            act = "" if action == "*" else f' && action == Action::"{action}"'
            lines.append(
                f'permit(principal in Role::"{role}", action, resource) '
                f"when {{ resource is {resource}{act} }};"
            )
    clauses = [
        f'(context.credential in Scope::"{r}:{a}"'
        + ("" if r == "*" else f" && resource is {r}")
        + ("" if a == "*" else f' && action == Action::"{a}"')
        + ")"
        for r in (*model.resources, "*")
        for a in (*ACTIONS, "*")
    ]
    lines.append(
        "forbid(principal, action, resource) when { context.scoped } unless { "
        + " || ".join(clauses)
        + " };"
    )
    return "\n".join(lines)


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


def cedar_entities(model: Model) -> str:
    """The whole graph, as a user of cedarpy without slicing would load it."""
    direct: dict[str, list[str]] = {}
    for _kind, subject, role, expires in model.bindings:
        if expires is None or expires > NOW:
            direct.setdefault(subject, []).append(role)
    found: list[dict[str, Any]] = []
    for role, (_, inherits) in model.roles.items():
        found.append(
            {"uid": _uid("Role", role), "attrs": {}, "parents": [_uid("Role", p) for p in inherits]}
        )
    for group in model.groups:
        parents = [_uid("Role", r) for r in direct.get(group, [])]
        found.append({"uid": _uid("Group", group), "attrs": {}, "parents": parents})
    for user in model.users:
        parents = [_uid("Role", r) for r in direct.get(user, [])]
        parents += [_uid("Group", g) for g in model.user_groups[user]]
        found.append({"uid": _uid("User", user), "attrs": {}, "parents": parents})
    for i, scopes in enumerate(model.credentials):
        parents = [_uid("Scope", f"{r}:{a}") for s in (scopes or []) for r, a in expand_scope(s)]
        found.append({"uid": _uid("Credential", f"cred{i}"), "attrs": {}, "parents": parents})
    for resource in model.resources:
        found.append({"uid": _uid(resource, "x"), "attrs": {}, "parents": []})
    return json.dumps(found)


def cedar_request(user: str, resource: str, action: str, cred: int) -> dict[str, Any]:
    return {
        "principal": _uid("User", user),
        "action": _uid("Action", action),
        "resource": _uid(resource, "x"),
        "context": {
            "scoped": cred != 0,
            "credential": {"__entity": _uid("Credential", f"cred{cred}")},
        },
    }
