"""Password rules (spec/004 "Password Policy"): length, character classes, no common password,
no reuse of the last N, expiry. Pure: the common list and the reuse check are passed in.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int = 12
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_digits: bool = True
    require_symbols: bool = True
    reject_common: bool = True
    history: int = 5
    expiry: timedelta | None = None


def normalised(password: str) -> str:
    """The form that is hashed and compared: NFKC, so the same typed password always matches."""
    return unicodedata.normalize("NFKC", password)


def _classes(password: str) -> dict[str, bool]:
    return {
        "uppercase": any(ch.isupper() for ch in password),
        "lowercase": any(ch.islower() for ch in password),
        "digits": any(ch.isdigit() for ch in password),
        "symbols": any(not ch.isalnum() for ch in password),
    }


def policy_violations(
    password: str,
    policy: PasswordPolicy,
    *,
    common: Container[str],
    reused: Callable[[str], bool] = lambda _: False,
    login: str = "",
) -> list[str]:
    """Every rule ``password`` breaks, as short sentences; empty when it is acceptable.

    ``reused(password)`` says whether it matches one of the last ``policy.history`` hashes;
    it is only asked when every cheaper rule already passed (it costs a hash per entry).
    """
    password = normalised(password)
    problems: list[str] = []
    if any("\ud800" <= ch <= "\udfff" for ch in password):
        # A lone surrogate is no text: login reads it as U+FFFD, so it could never be typed.
        problems.append("must be text: it holds a lone UTF-16 surrogate")
    if len(password) < policy.min_length:
        problems.append(f"must be at least {policy.min_length} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    present = _classes(password)
    required = {
        "uppercase": policy.require_uppercase,
        "lowercase": policy.require_lowercase,
        "digits": policy.require_digits,
        "symbols": policy.require_symbols,
    }
    missing = [name for name, needed in required.items() if needed and not present[name]]
    if missing:
        problems.append("must contain " + ", ".join(missing))
    folded = password.casefold()
    if policy.reject_common and (folded in common or password in common):
        problems.append("is a commonly used password")
    if login and len(login) >= 3 and login.casefold().partition("@")[0] in folded:
        problems.append("must not contain the login name")
    if not problems and policy.history > 0 and reused(password):
        problems.append(f"must differ from the last {policy.history} passwords")
    return problems


def is_expired(changed_at: datetime, policy: PasswordPolicy, *, now: datetime) -> bool:
    return policy.expiry is not None and now >= changed_at + policy.expiry
