"""Masking that runs before an event leaves memory (DESIGN.md section 7.8).

Two nets are always on: any field whose name says it holds a credential is redacted whatever
its value, and any string anywhere that looks like a credential (bastion's API keys, agent
and refresh tokens, JWTs, PEM and PGP private keys, the ``user:password@`` of a URL) is
redacted whatever its field, a mapping's keys included. `FieldMasker`
(`bastion.core.masking_rules`) adds the operator's ``security.dataProtection.masking`` rules
on top.

Masking copies only what it changes: a value with nothing to mask is returned as is, so the
common event costs one walk and no allocation. Callers must not mutate a value afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from bastion.core.masking_rules import REDACTED, FieldMasker, FieldRule, MaskMethod
from bastion.core.model import AuditEvent

__all__ = [
    "REDACTED",
    "FieldMasker",
    "FieldRule",
    "MaskMethod",
    "has_credential_like",
    "is_sensitive_name",
    "mask_event",
    "mask_event_checked",
    "mask_parts",
    "mask_value",
]

_SENSITIVE_NAME_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "privatekey",
    "pepper",
    "signingkey",
    "accesskey",
    "sessionid",
    "sessionkey",
    "backupcode",
    "recoverycode",
    "totp",
    "mfacode",
)
# Names too short to search for inside others ("otp" is in "footprint"): sensitive when whole.
_SENSITIVE_NAMES = frozenset({"otp", "pin", "auth", "session", "sid"})
# A JWT's header is JSON: "{" and then '"', " " or a line break encode as eyJ, eyA, ew...
_JWT_HEADS = ("eyJ", "eyA", "ewo", "ew0", "ewk")
_CREDENTIAL_LIKE = re.compile(
    r"(?:bk_live_|bat_|brt_)[A-Za-z0-9_]{8,}"
    r"|(?:" + "|".join(_JWT_HEADS) + r")[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:.|\n)*?"
    r"(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
    r"|(?<=://)[^/?#@\s:]*:[^/?#@\s]+(?=@)"
)
_MARKERS = ("bk_live_", "bat_", "brt_", "-----BEGIN", "://", *_JWT_HEADS)
_NAME_CACHE_LIMIT = 4096
_MAX_SAFE = 2**53 - 1


class _NameCache(dict[str, bool]):
    """Sensitivity per field name: names repeat, so each is folded and searched once."""

    def __missing__(self, name: str) -> bool:
        folded = name.lower().replace("-", "").replace("_", "")
        verdict = folded in _SENSITIVE_NAMES or any(
            part in folded for part in _SENSITIVE_NAME_PARTS
        )
        if len(self) >= _NAME_CACHE_LIMIT:
            self.clear()
        self[name] = verdict
        return verdict


_SENSITIVE = _NameCache()


def is_sensitive_name(name: str) -> bool:
    return _SENSITIVE[name]


def mask_value(value: Any) -> Any:
    """``value`` with sensitive fields and credential-like strings redacted (copy on change)."""
    return _Walk(strings=True).value(value)


def has_credential_like(text: str) -> bool:
    """True if ``text`` (for example an event's JSON) contains a credential-like string.

    JSON escaping never touches the characters the patterns are made of, so a credential in
    any string of a value shows in the value's JSON text too. Every pattern holds one of the
    literal markers, which rule most text out faster than the expression.
    """
    for marker in _MARKERS:
        if marker in text:
            return _CREDENTIAL_LIKE.search(text) is not None
    return False


class _Plan(NamedTuple):
    """What a dict's key set needs: which keys to redact, whether the keys are canonical, and
    which keys are themselves credential-like (renamed when strings are masked)."""

    sensitive: tuple[Any, ...]
    simple: bool
    credential_keys: tuple[str, ...]


class _Plans(dict[tuple[Any, ...], _Plan]):
    """Plans by key set: events of one kind share their shapes, so each is worked out once."""

    def __missing__(self, keys: tuple[Any, ...]) -> _Plan:
        plan = _Plan(
            tuple(k for k in keys if _SENSITIVE[str(k)]),
            all(type(k) is str and (k.isascii() or max(k) < "\ud800") for k in keys),
            tuple(k for k in keys if type(k) is str and _CREDENTIAL_LIKE.search(k)),
        )
        if len(self) >= _NAME_CACHE_LIMIT:
            self.clear()
        self[keys] = plan
        return plan


_PLANS = _Plans()


class _Walk:
    """One pass that masks a value and notes whether its C-encoded JSON is already canonical
    (RFC 8785): no floats, no integers beyond 2^53, only string keys below U+D800. Values
    that are not JSON (a datetime, a set) become their ``str``, so no event fails to encode.
    With ``strings=False`` credential-like strings are left to a check on the encoded text.
    """

    __slots__ = ("simple", "strings")

    def __init__(self, *, strings: bool) -> None:
        self.simple = True
        self.strings = strings

    def value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            if self.strings and _CREDENTIAL_LIKE.search(value):
                return _CREDENTIAL_LIKE.sub(REDACTED, value)
            return value
        if kind is dict:
            return self.mapping(value)
        if kind is list or kind is tuple:
            return self.items(value)
        if value is None or kind is bool:
            return value
        if kind is int:
            if not -_MAX_SAFE <= value <= _MAX_SAFE:
                self.simple = False
            return value
        if kind is float:
            self.simple = False
            return value
        return self.value(str(value))

    def mapping(self, value: dict[Any, Any]) -> dict[Any, Any]:
        sensitive, simple, credential_keys = _PLANS[tuple(value)]
        if not simple:
            self.simple = False
        if credential_keys and self.strings:
            return self.mapping(_renamed(value, credential_keys))
        if not self.strings and _all_strings(value.values()):
            # The common flat part: its strings are checked on the encoded text instead.
            return _redacted(value, sensitive) if sensitive else value
        changed: dict[Any, Any] | None = None
        if sensitive:
            changed = dict(value)
            for key in sensitive:
                changed[key] = REDACTED
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                if not self.strings or not _CREDENTIAL_LIKE.search(item):
                    continue
                new: Any = _CREDENTIAL_LIKE.sub(REDACTED, item)
            elif kind is int:
                if not -_MAX_SAFE <= item <= _MAX_SAFE:
                    self.simple = False
                continue
            elif item is None or kind is bool or (sensitive and key in sensitive):
                continue
            else:
                new = self.value(item)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed

    def items(self, value: Sequence[Any]) -> Sequence[Any]:
        if not self.strings and _all_strings(value):
            return value
        masked = [self.value(item) for item in value]
        if all(new is old for new, old in zip(masked, value, strict=True)):
            return value
        return masked


def _all_strings(values: Iterable[Any]) -> bool:
    # A plain loop: all() over a generator costs twice as much on this per-event path.
    for item in values:  # noqa: SIM110
        if type(item) is not str:
            return False
    return True


def _renamed(value: dict[Any, Any], keys: tuple[str, ...]) -> dict[Any, Any]:
    """``value`` with its credential-like keys masked (numbered when two would collide)."""
    renamed: dict[Any, Any] = {}
    for key, item in value.items():
        if key in keys:
            base = _CREDENTIAL_LIKE.sub(REDACTED, key)
            key, n = base, 1
            while key in value or key in renamed:
                n += 1
                key = f"{base}#{n}"
        renamed[key] = item
    return renamed


def _redacted(value: dict[Any, Any], keys: tuple[Any, ...]) -> dict[Any, Any]:
    changed = dict(value)
    for key in keys:
        changed[key] = REDACTED
    return changed


def mask_event(event: AuditEvent, fields: FieldMasker | None = None) -> AuditEvent:
    """``event`` with every free-form part masked (always-on nets, then ``fields``)."""
    return mask_event_checked(event, fields, strings=True)[0]


def mask_parts(
    event: AuditEvent,
    fields: FieldMasker | None = None,
    *,
    strings: bool,
    drop_reasons: bool = False,
    drop_user_agent: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], bool]:
    """The event's (actor, resource, details, request) masked, and whether their C-encoded
    JSON is already canonical.

    With ``strings=False`` the caller checks the encoded JSON with `has_credential_like`
    and masks again with ``strings=True`` when it finds one. ``drop_*`` leave out
    ``details.reasons`` and ``actor.userAgent`` (what the audit level does not keep).
    """
    actor, details = event.actor, event.details
    if drop_reasons and "reasons" in details:
        details = {k: v for k, v in details.items() if k != "reasons"}
    if drop_user_agent and "userAgent" in actor:
        actor = {k: v for k, v in actor.items() if k != "userAgent"}
    walk = _Walk(strings=strings)
    actor = walk.mapping(actor)
    resource = walk.mapping(event.resource)
    details = walk.mapping(details)
    request = walk.mapping(event.request)
    if fields:
        actor = fields.mask_part("actor", actor)
        resource = fields.mask_part("resource", resource)
        details = fields.mask_part("details", details)
        request = fields.mask_part("request", request)
    return actor, resource, details, request, walk.simple


def mask_event_checked(
    event: AuditEvent, fields: FieldMasker | None = None, *, strings: bool
) -> tuple[AuditEvent, bool]:
    """`mask_event`, and whether the event's JSON can take the canonical fast path."""
    actor, resource, details, request, simple = mask_parts(event, fields, strings=strings)
    if (
        actor is event.actor
        and resource is event.resource
        and details is event.details
        and request is event.request
    ):
        return event, simple
    masked = AuditEvent(
        event.event_id,
        event.timestamp,
        event.tenant,
        event.action,
        event.outcome,
        actor,
        resource,
        details,
        request,
        event.seq,
        event.prev_hash,
        event.hash,
    )
    return masked, simple
