"""Pydantic's validation errors as bastion reports them: (key path, short value-free message)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from bastion.config.models_base import KeyPath, NestedValueError

__all__ = ["error_message", "validation_issues"]


def validation_issues(exc: ValidationError) -> list[tuple[KeyPath, str]]:
    """Every pydantic error as (key path, short message), in pydantic's order."""
    issues: list[tuple[KeyPath, str]] = []
    errors = exc.errors(include_url=False, include_input=False)
    for error in errors:
        loc = tuple(error["loc"])
        # A list whose items failed also counts as "too short"; the item errors say it better.
        if error["type"] == "too_short" and _has_errors_below(loc, errors):
            continue
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, NestedValueError):
            issues.extend(((*loc, *relative), message) for relative, message in cause.issues)
        else:
            issues.append((loc, error_message(error)))
    return issues


def _has_errors_below(loc: KeyPath, errors: list[ErrorDetails]) -> bool:
    depth = len(loc)
    return any(len(e["loc"]) > depth and tuple(e["loc"][:depth]) == loc for e in errors)


_FIXED_MESSAGES: Mapping[str, str] = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "datetime_type": "must be a date and time like 2025-01-31T00:00:00Z",
    "datetime_parsing": "must be a date and time like 2025-01-31T00:00:00Z",
    "datetime_from_date_parsing": "must be a date and time like 2025-01-31T00:00:00Z",
}

_BOUND_MESSAGES: Mapping[str, str] = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
}

_QUOTED = re.compile(r"'([^']*)'")


def error_message(error: ErrorDetails) -> str:
    """A short, value-free message for one pydantic error."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "extra_forbidden" and error["loc"] and "_" in str(error["loc"][-1]).strip("_"):
        return f"unknown key (keys are camelCase: {to_camel(str(error['loc'][-1]))})"
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _BOUND_MESSAGES:
        return _BOUND_MESSAGES[kind].format(**ctx)
    if kind in ("literal_error", "enum"):
        choices = _QUOTED.findall(str(ctx.get("expected", "")))
        return "must be one of: " + ", ".join(choices) if choices else "is not an allowed value"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]
