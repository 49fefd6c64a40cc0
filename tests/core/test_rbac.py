"""RBAC semantics of DESIGN.md section 4: built-in roles, wildcards, inheritance, scopes."""

from __future__ import annotations

import pytest

from bastion.core.rbac import (
    Grant,
    Permission,
    RoleCycleError,
    RoleDefinition,
    compile_roles,
    decide,
    parse_scopes,
)

ROLES = compile_roles(
    [
        RoleDefinition(
            "pattern-manager",
            (Permission("patterns", "create"), Permission("patterns", "delete")),
            inherits=("viewer",),
        ),
    ]
)

CASES = [
    # role, scopes, permission, allowed
    ("admin", None, "anything:goes", True),
    ("operator", None, "patterns:delete", True),
    ("operator", None, "executions:create", True),
    ("operator", None, "agents:read", True),
    ("operator", None, "agents:manage", False),
    ("developer", None, "patterns:update", True),
    ("developer", None, "patterns:delete", False),
    ("developer", None, "executions:create", True),
    ("viewer", None, "agents:read", True),
    ("viewer", None, "patterns:create", False),
    ("pattern-manager", None, "patterns:delete", True),
    ("pattern-manager", None, "executions:read", True),  # inherited from viewer
    ("pattern-manager", None, "executions:create", False),
    ("admin", ("patterns:read", "executions:create"), "patterns:read", True),
    ("admin", ("patterns:read", "executions:create"), "executions:create", True),
    ("admin", ("patterns:read", "executions:create"), "patterns:delete", False),
    ("admin", ("patterns:write",), "patterns:update", True),
    ("admin", ("patterns:write",), "patterns:delete", False),
    ("admin", ("admin",), "agents:manage", True),
    ("viewer", ("admin",), "agents:manage", False),  # scopes only narrow
]


@pytest.mark.parametrize(("role", "scopes", "permission", "allowed"), CASES)
def test_decision_table(
    role: str, scopes: tuple[str, ...] | None, permission: str, allowed: bool
) -> None:
    resource, action = permission.split(":")
    decision = decide(
        grants=[Grant(role, "binding b1")],
        roles=ROLES,
        scopes=scopes,
        resource=resource,
        action=action,
    )
    assert decision.allowed is allowed
    assert decision.reasons


def test_allow_names_role_binding_and_scope() -> None:
    decision = decide(
        grants=[Grant("developer", "binding b7")],
        roles=ROLES,
        scopes=("patterns:read",),
        resource="patterns",
        action="read",
    )
    assert decision.reasons == (
        "role developer grants patterns:read via binding b7",
        "scope patterns:read",
    )


def test_no_grants_deny() -> None:
    decision = decide(grants=[], roles=ROLES, scopes=None, resource="patterns", action="read")
    assert not decision.allowed


def test_unknown_role_grants_nothing() -> None:
    decision = decide(
        grants=[Grant("ghost", "x")], roles=ROLES, scopes=None, resource="patterns", action="read"
    )
    assert not decision.allowed


def test_inheritance_cycle_rejected() -> None:
    with pytest.raises(RoleCycleError, match="a -> b -> a"):
        compile_roles([RoleDefinition("a", (), ("b",)), RoleDefinition("b", (), ("a",))])


@pytest.mark.parametrize("scopes", [[""], [], ["patterns"], ["patterns:read:x"], [":read"]])
def test_bad_scopes_rejected(scopes: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_scopes(scopes)


@pytest.mark.parametrize(
    "text",
    [
        "patterns: read",
        "patterns :read",
        "pat\nterns:read",
        "patterns:read\x1b[2J",
        "a\u200bb:read",
    ],
)
def test_injected_control_characters_or_spaces_in_a_permission_are_refused(text: str) -> None:
    """A grant that could never match (``patterns: read``) or that carries a newline or an ANSI
    escape into audit events and policy text is a configuration error, not a silent no-op."""
    with pytest.raises(ValueError, match="white space or control characters"):
        Permission.parse(text)
    with pytest.raises(ValueError):
        parse_scopes([text])


def test_surrounding_white_space_of_a_permission_is_trimmed() -> None:
    assert Permission.parse("  patterns:read\n") == Permission("patterns", "read")


def test_catalog_knows_ancestors_and_origin() -> None:
    catalog = compile_roles(
        [
            RoleDefinition("a", (Permission("x", "read"),), ("viewer",)),
            RoleDefinition("b", (), ("a",)),
        ]
    )
    assert catalog.ancestors("b") == ("b", "a", "viewer")
    assert catalog.origin("b", "x", "read") == ("a", Permission("x", "read"))
    assert catalog.origin("b", "y", "read") == ("viewer", Permission("*", "read"))
    assert catalog.origin("b", "y", "delete") is None


def test_unknown_inherited_role_rejected() -> None:
    with pytest.raises(ValueError, match="not defined"):
        compile_roles([RoleDefinition("a", (), ("nope",))])


def test_custom_role_cannot_take_a_builtin_name() -> None:
    with pytest.raises(ValueError, match="built-in"):
        compile_roles([RoleDefinition("admin", ())])


def test_three_role_cycle_named_in_full() -> None:
    with pytest.raises(RoleCycleError, match="a -> b -> c -> a"):
        compile_roles(
            [
                RoleDefinition("a", (), ("b",)),
                RoleDefinition("b", (), ("c",)),
                RoleDefinition("c", (), ("a",)),
            ]
        )
