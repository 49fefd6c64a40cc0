"""The operator's masking rules (``security.dataProtection.masking``): dotted field paths
with ``*`` wildcards, masked by redact, hash (keyed, so equal values stay linkable) or
partial. Applied on top of the always-on nets of `bastion.core.masking`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

REDACTED = "[REDACTED]"
MaskMethod = Literal["redact", "hash", "partial"]


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One configured path, split on dots (``output.*.secret`` → ``("output", "*", "secret")``)."""

    segments: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> FieldRule:
        segments = tuple(path.split("."))
        if not path or any(not s for s in segments):
            raise ValueError(f"not a field path: {path!r}")
        return cls(segments)


class FieldMasker:
    """The operator's masking rules, applied to each free-form part of an event.

    A path matches from the root of every part (``input.password`` masks
    ``details.input.password``); a path that starts with a part's name (``details.x``,
    ``request.query.ssn``) also matches from the event root. ``*`` matches any one key or
    list element. ``hash`` is HMAC-SHA256 under ``hash_key`` (16 hex characters shown).
    """

    def __init__(
        self, paths: Iterable[str], *, method: MaskMethod = "redact", hash_key: bytes = b""
    ) -> None:
        self.rules = tuple(FieldRule.parse(p) for p in paths)
        self.method: MaskMethod = method
        self._hash_key = hash_key
        if method == "hash" and len(hash_key) < 16:
            raise ValueError("the hash masking method needs a key of at least 16 bytes")

    def __bool__(self) -> bool:
        return bool(self.rules)

    def mask_part(self, part: str, value: Any) -> Any:
        """``value`` (the event's ``part``: actor, resource, details or request) masked."""
        for rule in self.rules:
            segments = rule.segments
            value = self._apply(value, segments)
            if len(segments) > 1 and segments[0] == part:
                value = self._apply(value, segments[1:])
        return value

    def _apply(self, value: Any, segments: tuple[str, ...]) -> Any:
        head, rest = segments[0], segments[1:]
        if isinstance(value, dict):
            keys = list(value) if head == "*" else ([head] if head in value else [])
            if not keys:
                return value
            out = dict(value)
            for key in keys:
                out[key] = self._apply(out[key], rest) if rest else self.mask_leaf(out[key])
            return out
        if isinstance(value, list | tuple) and head == "*":
            return [self._apply(item, rest) if rest else self.mask_leaf(item) for item in value]
        return value

    def mask_leaf(self, value: Any) -> Any:
        # Masking twice changes nothing: an already masked value is left as it is.
        if value is None or value == REDACTED or _looks_masked(value):
            return value
        if self.method == "hash":
            text = value if isinstance(value, str) else repr(value)
            digest = hmac.new(self._hash_key, text.encode("utf-8", "replace"), hashlib.sha256)
            return f"hmac:{digest.hexdigest()[:16]}"
        if (
            self.method == "partial"
            and isinstance(value, str | int)
            and not isinstance(value, bool)
        ):
            text = str(value)
            return "****" + text[-4:] if len(text) >= 8 else "****"
        return REDACTED


_MASKED = re.compile(r"hmac:[0-9a-f]{16}|\*\*\*\*.{0,4}")


def _looks_masked(value: Any) -> bool:
    return isinstance(value, str) and _MASKED.fullmatch(value) is not None
