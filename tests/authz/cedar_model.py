"""An RBAC model (roles, inheritance, bindings with expiry, groups, defaultRole, scopes, resource
rules) compiled to Cedar policies and entities, written independently of bastion's engine so
the differential test compares two implementations of DESIGN.md section 4."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RESOURCES = ("patterns", "executions", "agents", "reports")
ACTIONS = ("read", "create", "update", "delete", "execute", "manage")
BUILTIN = {
    "admin": [("*", "*")],
    "operator": [("patterns", "*"), ("executions", "*"), ("agents", "read")],
    "developer": [
        ("patterns", "create"),
        ("patterns", "read"),
        ("patterns", "update"),
        ("executions", "create"),
        ("executions", "read"),
    ],
    "viewer": [("*", "read")],
}


@dataclass
class Model:
    roles: dict[str, tuple[list[tuple[str, str]], list[str]]]  # custom: (perms, inherits)
    members: dict[str, list[str]]  # group → users
    bindings: list[tuple[str, str, str, datetime | None]]  # (kind, subject, role, expires)
    default_role: str | None
    rules: dict[tuple[str, str], tuple[list[str], list[str], list[str] | None]]
    now: datetime
    users: list[str] = field(default_factory=lambda: ["u0", "u1", "u2", "u3"])


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


def _expand_scope(scope: str) -> list[tuple[str, str]]:
    if scope == "admin":
        return [("*", "*")]
    resource, action = scope.split(":")
    if action == "write":
        return [(resource, "create"), (resource, "update")]
    return [(resource, action)]


def _match(resource: str, action: str) -> str:
    parts = []
    if resource != "*":
        parts.append(f"resource is {resource}")
    if action != "*":
        parts.append(f'action == Action::"{action}"')
    return " && ".join(parts) or "true"


def policies(model: Model) -> str:
    every_role = {name: perms for name, perms in BUILTIN.items()}
    every_role.update({name: perms for name, (perms, _) in model.roles.items()})
    text = []
    for role, perms in every_role.items():
        for resource, action in perms:
            text.append(
                f'permit(principal in Role::"{role}", action, resource) '
                f"when {{ {_match(resource, action)} }};"
            )
    clauses = [
        f'(context.credential in Scope::"{r}:{a}" && {_match(r, a)})'
        for r in (*RESOURCES, "*")
        for a in (*ACTIONS, "*")
    ]
    text.append(
        "forbid(principal, action, resource) when { context.scoped } unless { "
        + " || ".join(clauses)
        + " };"
    )
    text.append(
        "forbid(principal, action, resource) when { resource.ruled && "
        "(resource.allActions || resource.ruleActions.contains(action)) } unless { "
        "resource.allowedUsers.contains(principal) || principal in resource.allowedRoles };"
    )
    return "\n".join(text)


def entities(
    model: Model, user: str, resource: str, resource_id: str | None, scopes: list[str] | None
) -> str:
    known = set(BUILTIN) | set(model.roles)
    found: list[dict[str, Any]] = []
    for name in known:
        inherits = model.roles[name][1] if name in model.roles else []
        found.append(
            {"uid": _uid("Role", name), "attrs": {}, "parents": [_uid("Role", p) for p in inherits]}
        )
    active = [(i, b) for i, b in enumerate(model.bindings) if b[3] is None or model.now < b[3]]
    for i, (_, _, role, _) in active:
        parents = [_uid("Role", role)] if role in known else []
        found.append({"uid": _uid("Binding", str(i)), "attrs": {}, "parents": parents})
    groups = [g for g, users in model.members.items() if user in users]
    for group in groups:
        mine = [_uid("Binding", str(i)) for i, b in active if b[0] == "group" and b[1] == group]
        found.append({"uid": _uid("Group", group), "attrs": {}, "parents": mine})
    direct = [_uid("Binding", str(i)) for i, b in active if b[0] == "user" and b[1] == user]
    reaching = direct + [
        _uid("Binding", str(i)) for i, b in active if b[0] == "group" and b[1] in groups
    ]
    parents = direct + [_uid("Group", g) for g in groups]
    if not reaching and model.default_role is not None:
        parents.append(_uid("Role", model.default_role))
    found.append({"uid": _uid("User", user), "attrs": {}, "parents": parents})
    scope_parents = [_uid("Scope", f"{r}:{a}") for s in (scopes or []) for r, a in _expand_scope(s)]
    found.append({"uid": _uid("Credential", "c"), "attrs": {}, "parents": scope_parents})
    rule = model.rules.get((resource, resource_id or ""))
    attrs: dict[str, Any] = {
        "ruled": rule is not None and resource_id is not None,
        "allActions": True,
        "ruleActions": [],
        "allowedUsers": [],
        "allowedRoles": [],
    }
    if rule is not None:
        users, roles, actions = rule
        attrs["allowedUsers"] = [{"__entity": _uid("User", u)} for u in users]
        attrs["allowedRoles"] = [{"__entity": _uid("Role", r)} for r in roles]
        if actions is not None and "*" not in actions:
            attrs["allActions"] = False
            attrs["ruleActions"] = [{"__entity": _uid("Action", a)} for a in actions]
    found.append({"uid": _uid(resource, resource_id or "*"), "attrs": attrs, "parents": []})
    return json.dumps(found)


def request(
    user: str, resource: str, resource_id: str | None, action: str, scopes: list[str] | None
) -> dict[str, Any]:
    return {
        "principal": _uid("User", user),
        "action": _uid("Action", action),
        "resource": _uid(resource, resource_id or "*"),
        "context": {
            "scoped": scopes is not None,
            "credential": {"__entity": _uid("Credential", "c")},
        },
    }
