"""A Decision: the effect of an access check and the reasons that produced it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Decision:
    """``reasons`` name the binding, role, permission, scope or rule behind the effect."""

    effect: Effect
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    @classmethod
    def allow(cls, *reasons: str) -> Decision:
        return cls(Effect.ALLOW, reasons)

    @classmethod
    def deny(cls, *reasons: str) -> Decision:
        return cls(Effect.DENY, reasons)
