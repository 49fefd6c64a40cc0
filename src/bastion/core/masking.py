"""Masking that runs before an event leaves memory (DESIGN.md section 7.8).

Two nets: any field whose name says it holds a credential is redacted whatever its value, and
any string anywhere that looks like a bastion credential is redacted whatever its field.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"
_SENSITIVE_NAME_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "privatekey",
    "pepper",
)
_CREDENTIAL_LIKE = re.compile(r"\b(?:bk_live_|bat_)[A-Za-z0-9_]{8,}")


def is_sensitive_name(name: str) -> bool:
    folded = name.lower().replace("-", "").replace("_", "")
    return any(part in folded for part in _SENSITIVE_NAME_PARTS)


def mask_value(value: Any) -> Any:
    """A copy of ``value`` with sensitive fields and credential-like strings redacted."""
    if isinstance(value, dict):
        return {
            key: REDACTED if is_sensitive_name(str(key)) else mask_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    if isinstance(value, str):
        return _CREDENTIAL_LIKE.sub(REDACTED, value)
    return value
