"""Request-body rules: media types, JSON nesting depth, strict JSON and string rewriting.

JSON is checked for depth by a scan *before* it is parsed, so a hostile nesting of a million
brackets costs a linear scan and never reaches the recursive parser. Parsing is strict: duplicate
object keys and the non-standard ``NaN`` / ``Infinity`` are refused (two readings of the same
document are an ambiguity, DESIGN.md 7.2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


class BodyRuleError(ValueError):
    """The body breaks a rule; ``code`` says which (``invalid_json``, ``json_too_deep``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def media_type(content_type: str | None) -> str | None:
    """``"Application/JSON; charset=utf-8"`` → ``"application/json"``; None when absent."""
    if content_type is None:
        return None
    value = content_type.split(";", 1)[0].strip().lower()
    return value or None


def is_json(media: str | None) -> bool:
    return media is not None and (media == "application/json" or media.endswith("+json"))


def media_allowed(media: str | None, allowed: Iterable[str]) -> bool:
    """Whether ``media`` is one of ``allowed`` (exact, or ``type/*``, or ``*/*``)."""
    if media is None:
        return False
    kind = media.split("/", 1)[0]
    for entry in allowed:
        entry = entry.strip().lower()
        if entry in (media, "*/*") or entry == f"{kind}/*":
            return True
    return False


def json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True when arrays/objects in ``data`` nest deeper than ``max_depth`` (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class DuplicateKeyError(BodyRuleError):
    """A key given twice in one JSON object (its message names the key, JSON-quoted)."""

    def __init__(self, key: str) -> None:
        self.key = key
        shown = json.dumps(key)[:80]
        super().__init__(
            "invalid_json", f"the body has the key {shown} more than once in one object"
        )


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook`` that refuses a key given twice in one object."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise BodyRuleError("invalid_json", f"JSON must not contain {name}")


def parse_json(data: bytes, *, max_depth: int) -> Any:
    """The document in ``data``; `BodyRuleError` when too deep, malformed or ambiguous."""
    if json_depth_exceeds(data, max_depth):
        raise BodyRuleError("json_too_deep", f"JSON nests deeper than {max_depth} levels")
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=_no_constant)
    except BodyRuleError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BodyRuleError("invalid_json", "body is not valid JSON") from None


def rewrite_strings(document: Any, rewrite: Callable[[str], str]) -> tuple[Any, bool]:
    """``document`` with ``rewrite`` applied to every string value, and whether any changed.

    Object keys are left alone: rewriting them could make two keys equal. Recursion depth is
    bounded by the depth check that ran before parsing.
    """
    changed = False

    def fix(value: str) -> str:
        nonlocal changed
        new = rewrite(value)
        if new != value:
            changed = True
        return new

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return fix(node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return walk(document), changed
