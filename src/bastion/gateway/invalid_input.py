"""What was wrong with a request's input, said for the person who sent it.

FastAPI reports a bad body or parameter as pydantic errors located by model and field, and a
body it could not parse as a bare 400. These become bastion errors whose message is the
problem's ``detail``: where (``name``, ``requests/0/principal``, ``query parameter limit``,
``the body``) and why (``must be at most 254 characters``), never a model's class name and
never the value sent, which may be a secret (DESIGN.md 7.8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bastion.core.bodies import media_type
from bastion.errors import (
    InvalidBodyError,
    RequestRejectedError,
    UnsupportedMediaTypeError,
)

MAX_ISSUES = 10  # a body wrong in a hundred places is told about its first ten

_PARAMETERS = {"query": "query parameter", "path": "path parameter", "header": "header"}

_FIXED_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be an array",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "extra_forbidden": "is not a known field",
    "datetime_type": "must be an RFC 3339 date-time",
    "datetime_parsing": "must be an RFC 3339 date-time",
    "datetime_from_date_parsing": "must be an RFC 3339 date-time",
    "uuid_parsing": "must be a UUID",
    "nul_character": "must not hold a NUL character",
}

_CTX_REASONS = {
    "too_long": "must hold at most {max_length} items",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "enum": "must be {expected}",
    "literal_error": "must be {expected}",
}


def unparsed_body(content_type: str | None) -> UnsupportedMediaTypeError:
    """A body FastAPI did not read as JSON because it was not declared as JSON."""
    media = media_type(content_type)
    sent = media if media else "a body without a Content-Type"
    return UnsupportedMediaTypeError(f"the body must be application/json, not {sent}")


def unparsable_body(cause: BaseException | None) -> RequestRejectedError:
    """A body the JSON parser gave up on, or one refused while it was read, too large or too
    slow (FastAPI only says there was an error)."""
    if isinstance(cause, RequestRejectedError):  # too large, or too slow to arrive
        return cause
    if isinstance(cause, RecursionError):
        return InvalidBodyError("json_too_deep", "the body nests too deeply to be read as JSON")
    if isinstance(cause, UnicodeDecodeError):
        return InvalidBodyError("invalid_json", "the body is not UTF-8 text")
    return InvalidBodyError("invalid_json", "the body could not be read as JSON")


def invalid_input(
    errors: Sequence[Mapping[str, Any]], body: Any, *, content_type: str | None
) -> RequestRejectedError:
    """The one error that says what is wrong with a request FastAPI could not validate."""
    if isinstance(body, bytes | bytearray):
        return unparsed_body(content_type)
    for error in errors:
        if error.get("type") == "json_invalid":
            return _json_syntax(error, body)
    issues: list[str] = []
    for error in errors:
        issue = _issue(error, body)
        if issue not in issues:
            issues.append(issue)
    shown = issues[:MAX_ISSUES]
    if len(issues) > len(shown):
        shown.append(f"and {len(issues) - len(shown)} more")
    return RequestRejectedError("; ".join(shown) or "the request is not valid")


def not_json(why: str, text: str, position: int) -> InvalidBodyError:
    """The body ``text`` breaks JSON's grammar at ``position`` (``why``: the parser's words)."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    why = f": {why[:1].lower()}{why[1:]}" if why else ""
    message = f"the body is not valid JSON (line {line}, column {column}){why}"
    return InvalidBodyError("invalid_json", message)


def _json_syntax(error: Mapping[str, Any], document: Any) -> InvalidBodyError:
    loc = tuple(error.get("loc", ()))
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    why = str((error.get("ctx") or {}).get("error") or "")
    return not_json(why, document if isinstance(document, str) else "", position)


def _issue(error: Mapping[str, Any], body: Any) -> str:
    loc = tuple(error.get("loc", ()))
    reason = _reason(error)
    if loc and loc[0] == "body":
        where = _pointer(loc[1:], body)
        return f"{where}: {reason}" if where else f"the body {reason}"
    if loc and loc[0] in _PARAMETERS and len(loc) > 1:
        return f"{_PARAMETERS[loc[0]]} {loc[1]}: {reason}"
    where = "/".join(str(part) for part in loc)
    return f"{where}: {reason}" if where else reason


def _pointer(loc: Sequence[Any], document: Any) -> str:
    """``loc`` as a path through ``document`` (``requests/0/principal``). Parts that are not
    places in the document (the member of a union that was tried, by its tag or class name)
    are left out; a last part naming a member an object lacks is kept (it is missing)."""
    parts: list[str] = []
    node = document
    for index, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            parts.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(str(part))
            node = node[part]
        elif index == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            parts.append(part)
    return "/".join(parts)


def _reason(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    if kind in ("string_too_short", "string_too_long"):
        limit = ctx.get("min_length" if kind == "string_too_short" else "max_length")
        if kind == "string_too_short" and limit == 1:
            return "must not be empty"
        bound = "at least" if kind == "string_too_short" else "at most"
        return f"must be {bound} {limit} character{'' if limit == 1 else 's'}"
    if kind == "too_short":
        limit = ctx.get("min_length")
        return f"must hold at least {limit} item{'' if limit == 1 else 's'}"
    if kind in _CTX_REASONS:
        try:
            return _CTX_REASONS[kind].format(**ctx)
        except (KeyError, IndexError):
            pass
    return _plain(str(error.get("msg", "is not valid")))


def _plain(message: str) -> str:
    """pydantic's own sentence, made to follow a location ("Input should be …" → "must be …")."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    if message.startswith("Input should be "):
        return "must be " + message[len("Input should be ") :]
    return message[:1].lower() + message[1:]
