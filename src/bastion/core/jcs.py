"""RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes bastion hashes and signs.

RFC 8785 section 3.2: "Whitespace between JSON tokens MUST NOT be emitted", strings are
serialized as ECMAScript's JSON.stringify does, numbers as ECMAScript's Number.toString
(IEEE-754 doubles), and object properties are sorted by their names as arrays of UTF-16 code
units. For the values bastion usually puts in events (strings, small integers, booleans,
null, keys below U+E000: what `is_simple` accepts) a compact, key-sorted encoder already
produces exactly this: orjson does, and so does Python's C JSON encoder at a tenth of its
speed. Anything else takes the slower, complete path below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import orjson

__all__ = [
    "CanonicalJSONError",
    "canonical_json",
    "canonical_text",
    "fast_text",
    "format_number",
    "is_simple",
    "simple_text",
]

# RFC 8785 section 3.2.2.3 / I-JSON: integers beyond 2^53 are not exactly representable.
MAX_SAFE_INTEGER = 2**53 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Below U+E000 code-point order and UTF-16 code-unit order agree (surrogates are not keys).
_UTF16_SAFE_BELOW = "\ue000"

# The C encoder itself, made once: JSONEncoder.encode builds a new one on every call.
_C_ENCODER = c_make_encoder(None, None, encode_basestring, None, ":", ",", True, False, False)


# orjson also encodes datetimes, dataclasses and subclasses of str, int, dict and list in ways
# of its own: passed through, they make it refuse, and `simple_text` hands them to the C
# encoder. (Floats, which it writes differently, never reach it: `is_simple` excludes them.)
_ORJSON_SIMPLE = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def fast_text(value: Any) -> str:
    """The C encoder's compact, key-sorted output (canonical when `is_simple` holds)."""
    return "".join(_C_ENCODER(value, 0))


def simple_text(value: Any) -> str:
    """`fast_text` for a value the caller knows `is_simple` (or the masking walk said so).

    For such values orjson's compact, key-sorted output is the C encoder's, character for
    character (key order by code point, the same escapes, UTF-8 as is), and about ten
    times faster. What orjson declines (a lone surrogate, a subclass, nesting deeper than
    254) takes the C encoder.
    """
    try:
        return orjson.dumps(value, option=_ORJSON_SIMPLE).decode()
    except orjson.JSONEncodeError:
        return fast_text(value)


class CanonicalJSONError(ValueError):
    """A value that has no RFC 8785 form: NaN, infinity, a non-string key, a huge integer."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (dicts, lists, str, int, float, ...).

    A lone surrogate, which has no UTF-8 form, is written as U+FFFD.
    """
    try:
        return canonical_text(value).encode("utf-8")
    except UnicodeEncodeError:
        return canonical_text(value, simple=False).encode("utf-8")


def canonical_text(value: Any, *, simple: bool | None = None) -> str:
    """`canonical_json` as text (not yet UTF-8 encoded). ``simple`` skips the `is_simple`
    walk when the caller has already checked the value (the masking walk does)."""
    if simple if simple is not None else is_simple(value):
        return simple_text(value)
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def is_simple(value: Any) -> bool:
    """True when the C encoder's output is already canonical: no floats, no huge integers,
    only string keys below U+E000."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (key and max(key) >= _UTF16_SAFE_BELOW):
                return False
            if not is_simple(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(is_simple(item) for item in value)
    return False


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(encode_basestring(_LONE_SURROGATE.sub("\ufffd", value)))
    elif isinstance(value, int | float):
        out.append(format_number(value))
    elif isinstance(value, Mapping):
        _write_object(value, out)
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise CanonicalJSONError(f"{type(value).__name__} is not a JSON value")


def _write_object(value: Mapping[Any, Any], out: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise CanonicalJSONError("object keys must be strings")
    out.append("{")
    for index, key in enumerate(sorted(value, key=_utf16_key)):
        if index:
            out.append(",")
        out.append(encode_basestring(_LONE_SURROGATE.sub("\ufffd", key)))
        out.append(":")
        _write(value[key], out)
    out.append("}")


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as sequences of UTF-16 code units.
    return name.encode("utf-16-be", "surrogatepass")


def format_number(value: int | float) -> str:
    """ECMAScript Number.prototype.toString for a finite double (RFC 8785 section 3.2.2.3)."""
    if isinstance(value, bool):
        raise CanonicalJSONError("a boolean is not a number")
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJSONError("an integer beyond 2^53 has no exact JSON number form")
        return str(value)
    if not math.isfinite(value):
        raise CanonicalJSONError("NaN and infinity have no JSON form")
    if value == 0:
        return "0"  # -0 too
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(abs(value))
    return sign + _es_layout(digits, point)


def _shortest_digits(value: float) -> tuple[str, int]:
    """(s, n) with value = 0.s * 10^n, s the shortest round-tripping digits (repr's)."""
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    run = (whole + fraction).rstrip("0")
    stripped = run.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(run) - len(stripped))
    return stripped, point


def _es_layout(digits: str, n: int) -> str:
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    exponent = n - 1
    mark = "+" if exponent >= 0 else "-"
    head = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{head}e{mark}{abs(exponent)}"
