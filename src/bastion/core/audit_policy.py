"""Which audit events are recorded, and with how much detail (``security.audit.events`` and
``security.audit.level``).

Every event has a category, from its action's first word (``pattern.execute`` → patterns) or,
for a request refused for want of a valid credential (HTTP 401), authentication. Levels:

- ``minimal``: authentication successes and failures, every deny and failure, every change;
  allowed accesses are not recorded, and ``actor.userAgent`` is dropped.
- ``standard``: also every allowed access, without its decision reasons.
- ``verbose``: everything, with decision reasons for allows too.

Changes committed together with their event (users, keys, roles, bindings, policies, config,
secret reads) are always recorded: the policy governs events that describe requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bastion.core.model import AuditEvent

Level = Literal["minimal", "standard", "verbose"]
CATEGORIES = (
    "authentication",
    "authorization",
    "patterns",
    "executions",
    "agents",
    "admin",
    "secrets",
    "config",
)
_ACCESS = frozenset({"authorization", "patterns", "executions", "agents"})
_CATEGORY_BY_WORD = {
    "auth": "authentication",
    "login": "authentication",
    "logout": "authentication",
    "mfa": "authentication",
    "session": "authentication",
    "token": "authentication",
    "oauth": "authentication",
    "sso": "authentication",
    "authz": "authorization",
    "request": "authorization",
    "pattern": "patterns",
    "execution": "executions",
    "agent": "agents",
    "secret": "secrets",
    "kms": "secrets",
    "config": "config",
}
_ADMIN_WORDS = frozenset(
    {
        "apikey",
        "user",
        "tenant",
        "binding",
        "role",
        "policy",
        "group",
        "rule",
        "audit",
        "identity",
        "serviceaccount",
        "signingkey",
        "breakglass",
        "compliance",
    }
)


def category(event: AuditEvent) -> str:
    """The ``security.audit.events`` category an event belongs to."""
    if event.details.get("status") == 401:
        return "authentication"
    word = event.action.partition(".")[0].lower()
    if word in _ADMIN_WORDS:
        return "admin"
    return _CATEGORY_BY_WORD.get(word, "authorization")


@dataclass(frozen=True, slots=True)
class Trim:
    """What the level leaves out of an event it records."""

    reasons: bool = False
    user_agent: bool = False


KEEP = Trim()
_NO_REASONS = Trim(reasons=True)
_MINIMAL = Trim(user_agent=True)


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    categories: frozenset[str]
    level: Level = "standard"

    @classmethod
    def of(cls, categories: Iterable[str], level: Level) -> AuditPolicy:
        return cls(frozenset(categories), level)

    def admit(self, event: AuditEvent) -> Trim | None:
        """How to record the event, or None when it is not to be recorded."""
        kind = category(event)
        if kind not in self.categories:
            return None
        if self.level == "verbose":
            return KEEP
        allowed_access = event.outcome == "success" and kind in _ACCESS
        if self.level == "minimal":
            return None if allowed_access else _MINIMAL
        return _NO_REASONS if allowed_access else KEEP


ALL = AuditPolicy(frozenset(CATEGORIES), "verbose")
