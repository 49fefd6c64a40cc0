"""Roles, permissions and scopes (DESIGN.md section 4), compiled into O(1) look-ups.

A permission is ``resource:action`` and ``*`` matches any resource or any action. A
credential's scopes use the same strings and only ever narrow: the effective permissions of a
request are the role permissions intersected with the credential's scopes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from bastion.core.decision import Decision

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Permission:
    resource: str
    action: str

    @classmethod
    def parse(cls, text: str) -> Permission:
        """``resource:action``; ValueError for anything else, white space or a control
        character inside included (``patterns: read`` would otherwise be a grant that never
        matches, and a newline would travel into audit events and policy text)."""
        resource, sep, action = text.strip().partition(":")
        if not sep or not resource or not action or ":" in action:
            raise ValueError(f"{text!r} is not a permission of the form resource:action")
        if any(ch.isspace() or not ch.isprintable() for ch in resource + action):
            raise ValueError(f"{text!r} must not contain white space or control characters")
        return cls(resource, action)

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


class PermissionSet:
    """A set of permissions answering ``allows(resource, action)`` with at most four look-ups."""

    __slots__ = ("_granted",)

    def __init__(self, permissions: Iterable[Permission] = ()) -> None:
        self._granted = frozenset((p.resource, p.action) for p in permissions)

    def allows(self, resource: str, action: str) -> bool:
        granted = self._granted
        return (
            (resource, action) in granted
            or (resource, WILDCARD) in granted
            or (WILDCARD, action) in granted
            or (WILDCARD, WILDCARD) in granted
        )

    def __iter__(self) -> Iterator[Permission]:
        return (Permission(r, a) for r, a in sorted(self._granted))

    def pairs(self) -> frozenset[tuple[str, str]]:
        """The granted ``(resource, action)`` pairs themselves (shared, not copied)."""
        return self._granted

    def __len__(self) -> int:
        return len(self._granted)


def _perms(*texts: str) -> tuple[Permission, ...]:
    return tuple(Permission.parse(text) for text in texts)


BUILTIN_ROLES: Mapping[str, tuple[Permission, ...]] = {
    "admin": _perms("*:*"),
    "operator": _perms("patterns:*", "executions:*", "agents:read"),
    "developer": _perms(
        "patterns:create",
        "patterns:read",
        "patterns:update",
        "executions:create",
        "executions:read",
    ),
    "viewer": _perms("*:read"),
}

# spec/000's scope table: `admin` is everything, `<resource>:write` is create and update.
_SCOPE_ALIASES: Mapping[str, tuple[str, ...]] = {"admin": ("*:*",)}
_WRITE_ACTIONS = ("create", "update")


def scope_permissions(scope: str) -> tuple[Permission, ...]:
    """The permissions one scope string stands for; ValueError for a malformed scope."""
    if scope in _SCOPE_ALIASES:
        return _perms(*_SCOPE_ALIASES[scope])
    permission = Permission.parse(scope)
    if permission.action == "write":
        return tuple(Permission(permission.resource, action) for action in _WRITE_ACTIONS)
    return (permission,)


def parse_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validate and de-duplicate scope strings, keeping their order; ValueError on a bad one."""
    seen: dict[str, None] = {}
    for scope in scopes:
        cleaned = scope.strip()
        if not cleaned:
            continue
        scope_permissions(cleaned)
        seen[cleaned] = None
    if not seen:
        raise ValueError("at least one scope is required (use 'admin' for full access)")
    return tuple(seen)


def scope_set(scopes: Iterable[str]) -> PermissionSet:
    return PermissionSet(p for scope in scopes for p in scope_permissions(scope))


def scopes_within(inner: Iterable[str], outer: Iterable[str] | None) -> bool:
    """True when every permission ``inner`` stands for is also granted by ``outer``.

    ``outer`` None is an unscoped credential, which covers anything. Wildcards are compared as
    wildcards: ``*:read`` lies within ``*:read`` or ``*:*``, not within ``patterns:read``.
    """
    if outer is None:
        return True
    granted = scope_set(outer)
    return all(
        granted.allows(p.resource, p.action) for scope in inner for p in scope_permissions(scope)
    )


ROLE_NAME_RULE = (
    "a role name must not contain a comma or white space: the upstream gets a principal's roles "
    "as one comma-separated list (X-Bastion-Roles), which would read such a name as two roles"
)


def role_name_breaks_rule(name: str) -> bool:
    """Whether ``name`` breaks `ROLE_NAME_RULE`: ``reader,admin`` would be listed to the
    upstream as ``reader`` and ``admin``, and header consumers also split on white space."""
    return any(ch == "," or ch.isspace() for ch in name)


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    name: str
    permissions: tuple[Permission, ...]
    inherits: tuple[str, ...] = ()


class RoleCycleError(ValueError):
    """Custom roles inherit from each other in a loop."""


class RoleCatalog(Mapping[str, PermissionSet]):
    """Built-in and custom roles, each flattened (with everything it inherits) once.

    A mapping from role name to its `PermissionSet`; `ancestors` and `origin` answer the
    questions an explanation asks (which inherited role brought a permission).
    """

    def __init__(self, definitions: Mapping[str, RoleDefinition]) -> None:
        self.definitions = dict(definitions)
        self._closure: dict[str, tuple[str, ...]] = {}
        for name in self.definitions:
            self._close(name, ())
        self._sets = {
            name: PermissionSet(
                p for member in self._closure[name] for p in self.definitions[member].permissions
            )
            for name in self.definitions
        }
        # Every granted pair gets a bit number: a principal's access becomes one small table
        # indexed by it (see `bastion.core.grants.PrincipalAccess`), so a decision touches a
        # few bytes whatever the number of roles and bindings.
        self._bits: dict[tuple[str, str], int] = {}
        for permissions in self._sets.values():
            for pair in permissions.pairs():
                self._bits.setdefault(pair, len(self._bits))
        self._role_bits = {
            name: tuple(sorted(self._bits[pair] for pair in permissions.pairs()))
            for name, permissions in self._sets.items()
        }
        self._probes: dict[tuple[str, str], tuple[int, ...]] = {}

    def bits(self, name: str) -> tuple[int, ...]:
        """The bit numbers of every pair role ``name`` grants, ascending (() when unknown)."""
        return self._role_bits.get(name, ())

    def probe(self, resource: str, action: str) -> tuple[int, ...]:
        """The bit numbers of the pairs that would grant ``resource:action`` (wildcards
        included); () when no role grants it."""
        key = (resource, action)
        probe = self._probes.get(key)
        if probe is None:
            pairs = (key, (resource, WILDCARD), (WILDCARD, action), (WILDCARD, WILDCARD))
            probe = tuple(self._bits[pair] for pair in pairs if pair in self._bits)
            if len(self._probes) >= 100_000:  # bounded: requests may name anything
                self._probes = {}
            self._probes[key] = probe
        return probe

    def _close(self, name: str, trail: tuple[str, ...]) -> tuple[str, ...]:
        if name in trail:
            raise RoleCycleError("inheritance cycle " + " -> ".join((*trail, name)))
        if name in self._closure:
            return self._closure[name]
        if name not in self.definitions:
            via = f" (inherited by {trail[-1]})" if trail else ""
            raise ValueError(f"role {name!r} is not defined{via}")
        members: dict[str, None] = {name: None}
        for parent in self.definitions[name].inherits:
            members.update(dict.fromkeys(self._close(parent, (*trail, name))))
        self._closure[name] = tuple(members)
        return self._closure[name]

    def __getitem__(self, name: str) -> PermissionSet:
        return self._sets[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sets)

    def __len__(self) -> int:
        return len(self._sets)

    def ancestors(self, name: str) -> tuple[str, ...]:
        """``name`` and every role it inherits, nearest first; () for an unknown role."""
        return self._closure.get(name, ())

    def origin(self, name: str, resource: str, action: str) -> tuple[str, Permission] | None:
        """The role in ``name``'s inheritance that grants ``resource:action``, and how."""
        for member in self._closure.get(name, ()):
            for permission in self.definitions[member].permissions:
                if permission.resource in (resource, WILDCARD) and permission.action in (
                    action,
                    WILDCARD,
                ):
                    return member, permission
        return None


def compile_roles(custom: Sequence[RoleDefinition]) -> RoleCatalog:
    """Flatten built-in and custom roles (with inheritance) into one permission set per role.

    `RoleCycleError` for an inheritance loop, ValueError for an unknown inherited role or a
    custom role that reuses a built-in name.
    """
    definitions: dict[str, RoleDefinition] = {
        name: RoleDefinition(name, perms) for name, perms in BUILTIN_ROLES.items()
    }
    for role in custom:
        if role.name in BUILTIN_ROLES:
            raise ValueError(f"{role.name} is a built-in role; give the custom role another name")
        definitions[role.name] = role
    return RoleCatalog(definitions)


@dataclass(frozen=True, slots=True)
class Grant:
    """A role that reaches a principal, and the binding that brought it (for explanations)."""

    role: str
    via: str


def decide(
    *,
    grants: Sequence[Grant],
    roles: Mapping[str, PermissionSet],
    scopes: Sequence[str] | None,
    resource: str,
    action: str,
) -> Decision:
    """RBAC ∩ scopes for one (resource, action). ``scopes`` None means an unscoped credential."""
    permission = f"{resource}:{action}"
    granting = next(
        (g for g in grants if g.role in roles and roles[g.role].allows(resource, action)), None
    )
    if granting is None:
        held = ", ".join(sorted({g.role for g in grants})) or "none"
        return Decision.deny(f"no role grants {permission} (roles: {held})")
    role_reason = f"role {granting.role} grants {permission} via {granting.via}"
    if scopes is None:
        return Decision.allow(role_reason)
    scope = next((s for s in scopes if scope_set((s,)).allows(resource, action)), None)
    if scope is None:
        return Decision.deny(role_reason, f"credential scopes do not include {permission}")
    return Decision.allow(role_reason, f"scope {scope}")
