"""Which names a Cedar policy tests a principal against (groups, roles, principals), so that
the admin API's escalation guard can reserve them: Cedar ids carry no tenant."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.core.cedar_schema import PRINCIPAL_TYPES
from bastion.core.names import canonical_name

# The entity types whose ids a change through the admin API can choose or join.
_NAMED_TYPES = frozenset(("Group", "Role", *PRINCIPAL_TYPES.values()))


@dataclass(frozen=True, slots=True)
class NameReferences:
    """The names one policy tests a principal against, in canonical form (NFKC, case-folded).

    Compared canonically, so a match may be wider than Cedar's exact one, never narrower.
    ``principal_names`` and ``patterns`` come from a policy that reads ``principal.name``: each
    of its string literals and ``like`` patterns is taken as a principal name it may test.
    """

    entities: frozenset[tuple[str, str]] = frozenset()  # (Cedar type, id)
    principal_names: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()

    def include(self, kind: str, name: str) -> bool:
        key = canonical_name(name)
        if (kind, key) in self.entities:
            return True
        if kind not in PRINCIPAL_TYPES.values():
            return False
        return key in self.principal_names or any(p.fullmatch(key) for p in self.patterns)


NO_NAMES = NameReferences()


def name_references(body: dict[str, Any]) -> NameReferences:
    """The names a policy (Cedar's JSON form) tests a principal against, anywhere in its scope
    and conditions: entity literals of the named types, and, when it reads ``principal.name``,
    its string literals and ``like`` patterns (its action is never a principal)."""
    nodes = list(_nodes([body["principal"], body["resource"], body["conditions"]]))
    entities = frozenset(
        (node["type"], canonical_name(node["id"]))
        for node in nodes
        if isinstance(node.get("type"), str)
        and node["type"] in _NAMED_TYPES
        and isinstance(node.get("id"), str)
    )
    if not any(node.get("attr") == "name" for node in nodes):
        return NameReferences(entities)
    literals = frozenset(
        canonical_name(node["Value"]) for node in nodes if isinstance(node.get("Value"), str)
    )
    likes = [node["like"] for node in nodes if isinstance(node.get("like"), dict)]
    patterns = tuple(_like_pattern(like.get("pattern", ())) for like in likes)
    return NameReferences(entities, literals, patterns)


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, itself included, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _like_pattern(elements: Sequence[Any]) -> re.Pattern[str]:
    """A Cedar ``like`` pattern as a case-folded regex; an element of a form this does not
    know matches anything, so the pattern errs wide."""
    parts = (
        re.escape(str(e["Literal"]).casefold()) if isinstance(e, dict) and "Literal" in e else ".*"
        for e in elements
    )
    return re.compile("".join(parts), re.DOTALL)
