"""A Decision: the effect of an access check, the reasons that produced it, and its stages.

Both are named tuples rather than frozen dataclasses: a decision is built on every request
and a frozen dataclass's ``__init__`` alone costs about a microsecond here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Check(NamedTuple):
    """One stage of a decision (``tenant``, ``rbac``, ``scopes``, ``rules``, ``cedar``).

    ``passed`` None means the stage did not apply (no resource rule, no policies loaded).
    """

    stage: str
    passed: bool | None
    reasons: tuple[str, ...]


class Decision(NamedTuple):
    """``reasons`` name the binding, role, permission, scope, rule or policy behind the effect.

    ``checks`` keeps the same reasons grouped per stage, which ``bastion authz explain`` prints
    as a tree.
    """

    effect: Effect
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    def __bool__(self) -> bool:
        # A non-empty tuple is truthy: `if decision:` would allow a deny. Ask `.allowed`.
        raise TypeError("a Decision has no truth value; use decision.allowed")

    @classmethod
    def allow(cls, *reasons: str) -> Decision:
        return cls(Effect.ALLOW, reasons)

    @classmethod
    def deny(cls, *reasons: str) -> Decision:
        return cls(Effect.DENY, reasons)
