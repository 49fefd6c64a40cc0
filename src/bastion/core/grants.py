"""Per-principal compiled access: the roles that reach a principal now, flattened to look-ups.

A principal's bindings (direct, through its groups, from configuration, or the default role)
are compiled once into a `PrincipalAccess`: a table from every granted ``(resource, action)``
pair (wildcards included) to the grant that brings it. A decision is then at most four table
reads, whatever the number of roles, bindings or principals (DESIGN.md section 11).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bastion.core.rbac import WILDCARD, Grant, RoleCatalog, scope_permissions

DEFAULT_ROLE_VIA = "security.rbac.defaultRole"


@dataclass(frozen=True, slots=True)
class BindingGrant:
    """A role offered by one binding; ``via`` names the binding for explanations."""

    role: str
    via: str
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


class PrincipalAccess:
    """What one principal's roles allow, valid until ``valid_until`` (the next expiry).

    The permissions are one table indexed by the catalog's pair bits: for every pair, the
    position of the first grant that brings it (a byte per pair for fewer than 255 grants).
    ``grant_for`` reads at most four entries, for an allow (naming the binding in the reasons)
    as for a deny, whatever the number of grants.
    """

    __slots__ = ("_catalog", "_first", "_none", "grants", "held", "roles", "valid_until")

    def __init__(
        self,
        grants: tuple[Grant, ...],
        roles: frozenset[str],
        catalog: RoleCatalog,
        valid_until: datetime | None,
    ) -> None:
        self.grants = grants
        self.roles = roles
        # The bound roles as a deny reason names them, formatted once.
        self.held = ", ".join(sorted({g.role for g in grants})) or "none"
        self._catalog = catalog
        self._first, self._none = _first_grants(grants, catalog)
        self.valid_until = valid_until

    def grant_for(self, resource: str, action: str) -> Grant | None:
        """The first grant that allows ``resource:action``, or None."""
        table = self._first
        width = len(table)
        first = none = self._none
        for bit in self._catalog.probe(resource, action):
            if bit < width:
                index = table[bit]
                if index < first:
                    first = index
        return None if first == none else self.grants[first]

    def fresh(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


def _first_grants(grants: Sequence[Grant], catalog: RoleCatalog) -> tuple[bytes | array[int], int]:
    """For every pair bit, the index of the first grant whose role brings it; the table's
    "no grant" value. Only as wide as the highest bit held, so it costs what is granted; bytes
    (one object, read with one cache miss) unless the principal has 255 grants or more."""
    typecode, none = ("B", 0xFF) if len(grants) < 0xFF else ("L", 0xFFFFFFFF)
    bits = [catalog.bits(grant.role) for grant in grants]
    table = array(typecode, [none]) * max((b[-1] + 1 for b in bits if b), default=0)
    for index in range(len(grants) - 1, -1, -1):  # the earliest grant writes last
        for bit in bits[index]:
            table[bit] = index
    return (table.tobytes() if typecode == "B" else table), none


def compile_access(
    offered: Iterable[BindingGrant],
    catalog: RoleCatalog,
    *,
    now: datetime,
    default_role: str | None = None,
) -> PrincipalAccess:
    """Compile the bindings active at ``now``; the default role applies when none is.

    Roles the catalog does not know grant nothing (a binding may outlive a deleted role).
    """
    offered = tuple(offered)
    active = [g for g in offered if g.active(now)]
    expiries = [g.expires_at for g in active if g.expires_at is not None]
    if not active and default_role is not None:
        active = [BindingGrant(default_role, DEFAULT_ROLE_VIA)]
    grants = tuple(Grant(g.role, g.via) for g in active)
    roles: set[str] = set()
    for grant in grants:
        roles.update(catalog.ancestors(grant.role))
    return PrincipalAccess(grants, frozenset(roles), catalog, min(expiries, default=None))


class ScopeIndex:
    """A credential's scopes as look-ups: which scope covers ``resource:action``."""

    __slots__ = ("_index", "scopes")

    def __init__(self, scopes: Sequence[str]) -> None:
        self.scopes = tuple(scopes)
        self._index: dict[tuple[str, str], str] = {}
        for scope in self.scopes:
            for permission in scope_permissions(scope):
                self._index.setdefault((permission.resource, permission.action), scope)

    def scope_for(self, resource: str, action: str) -> str | None:
        index = self._index
        return (
            index.get((resource, action))
            or index.get((resource, WILDCARD))
            or index.get((WILDCARD, action))
            or index.get((WILDCARD, WILDCARD))
        )
