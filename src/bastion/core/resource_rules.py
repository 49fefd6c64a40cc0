"""Resource rules (spec/000 "Pattern-Level Permissions"): per-instance allow lists.

A rule names one resource instance (``patterns/sensitive-analysis``) and, optionally, the
actions it restricts. When a rule applies it must also pass: the principal is a user whose
name is in ``allowedUsers`` (a service account or agent of the same name is not that user), or
one of the roles it holds (inherited ones included) is in ``allowedRoles``. A rule with both
lists empty admits nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bastion.core.decision import Check

STAGE = "rules"


@dataclass(frozen=True, slots=True)
class ResourceRule:
    """One rule; ``via`` names where it was declared (config index or stored rule id)."""

    resource_type: str
    resource_id: str
    allowed_users: frozenset[str]
    allowed_roles: frozenset[str]
    actions: frozenset[str] | None
    via: str

    @property
    def resource(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"

    def applies_to(self, action: str) -> bool:
        return self.actions is None or action in self.actions or "*" in self.actions

    def admits(self, principal: str, roles: frozenset[str], *, is_user: bool) -> bool:
        """True when the rule lets in ``principal`` holding ``roles`` (inherited ones included),
        whatever the action."""
        return (is_user and principal in self.allowed_users) or not roles.isdisjoint(
            self.allowed_roles
        )


def parse_resource(text: str) -> tuple[str, str]:
    """``patterns/sensitive-analysis`` → ("patterns", "sensitive-analysis"); ValueError else."""
    resource_type, sep, resource_id = text.strip().partition("/")
    if not sep or not resource_type or not resource_id:
        raise ValueError(f"{text!r} is not a resource of the form type/id")
    return resource_type, resource_id


class RuleIndex:
    """The rules of one tenant by resource instance: one dict look-up per decision."""

    __slots__ = ("_rules",)

    def __init__(self, rules: Iterable[ResourceRule]) -> None:
        grouped: dict[tuple[str, str], list[ResourceRule]] = {}
        for rule in rules:
            grouped.setdefault((rule.resource_type, rule.resource_id), []).append(rule)
        self._rules: Mapping[tuple[str, str], tuple[ResourceRule, ...]] = {
            key: tuple(value) for key, value in grouped.items()
        }

    def rules_for(self, resource_type: str, resource_id: str | None) -> Sequence[ResourceRule]:
        if resource_id is None or not self._rules:
            return ()
        return self._rules.get((resource_type, resource_id), ())

    def admitting(self, roles: frozenset[str], *, user: str | None = None) -> list[ResourceRule]:
        """Every rule that admits a holder of ``roles`` (inherited ones included), or the user
        named ``user``, in resource order."""
        return [
            rule
            for key in sorted(self._rules)
            for rule in self._rules[key]
            if rule.admits(user or "", roles, is_user=user is not None)
        ]

    def __len__(self) -> int:
        return sum(len(rules) for rules in self._rules.values())


def check_rules(
    rules: Sequence[ResourceRule],
    *,
    principal: str,
    roles: frozenset[str],
    action: str,
    is_user: bool,
) -> Check | None:
    """The ``rules`` stage, or None when no rule applies to this action. ``is_user`` False
    (a service account or agent) never matches ``allowedUsers``."""
    applying = [rule for rule in rules if rule.applies_to(action)]
    if not applying:
        return None
    reasons: list[str] = []
    for rule in applying:
        if is_user and principal in rule.allowed_users:
            reasons.append(f"{rule.via} on {rule.resource} allows user {principal}")
            continue
        matched = sorted(roles & rule.allowed_roles)
        if matched:
            reasons.append(f"{rule.via} on {rule.resource} allows role {matched[0]}")
            continue
        reasons.append(
            f"{rule.via} on {rule.resource} admits neither {principal} nor roles "
            f"{', '.join(sorted(roles)) or 'none'}"
        )
        return Check(STAGE, False, tuple(reasons))
    return Check(STAGE, True, tuple(reasons))
