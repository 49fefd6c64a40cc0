"""Durations ("30m", "7d", "6y") and byte sizes ("10MB", "512KiB") as written in bastion.yaml,
and moments as filters take them ("1h" back from now, or an RFC 3339 time)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "DURATION_MESSAGE",
    "DURATION_TOO_LARGE",
    "MOMENT_MESSAGE",
    "MOMENT_NEEDS_OFFSET",
    "MOMENT_OUT_OF_RANGE",
    "SIZE_MESSAGE",
    "ByteSize",
    "Duration",
    "NonNegativeDuration",
    "UtcMoment",
    "format_duration",
    "moment_before",
    "parse_byte_size",
    "parse_duration",
    "parse_moment",
]

DURATION_MESSAGE = "must be a duration like 30s, 15m, 1h, 7d"
SIZE_MESSAGE = "must be a size like 512KB, 10MB, 1GiB"
# The largest duration Python's timedelta holds, in whole days.
_MAX_DAYS = 999_999_999
DURATION_TOO_LARGE = f"is too large (at most {_MAX_DAYS}d)"
MOMENT_MESSAGE = "must be a duration like 1h or 7d, or an RFC 3339 time like 2026-01-01T00:00:00Z"
MOMENT_NEEDS_OFFSET = "must be a time with an offset (Z or +hh:mm)"
# A datetime holds the years 1 to 9999; a moment outside them (in UTC) cannot be compared.
MOMENT_OUT_OF_RANGE = "is out of range (the years 1 to 9999, in UTC)"

# A year is 365 days: retention periods ("6y") are about records, not calendars.
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION_PART = re.compile(r"([0-9]+)\s*([smhdwy])")
_DURATION_WHOLE = re.compile(r"(?:[0-9]+\s*[smhdwy]\s*)+")
_PLAIN_NUMBER = re.compile(r"[0-9]+")
# More digits than this is beyond _MAX_DAYS in any unit (and never reaches int()'s own limit).
_MAX_DIGITS = 16

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"([0-9]{1,15})\s*([A-Za-z]{0,3})")


def parse_duration(value: object) -> timedelta:
    """``"15s"``, ``"30m"``, ``"1h"``, ``"7d"``, ``"2w"``, ``"6y"``, ``"1h30m"`` or whole seconds.

    Raises ValueError (with ``DURATION_MESSAGE``) for anything else, and (with
    ``DURATION_TOO_LARGE``) beyond 999999999 days; the sign is not checked.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _seconds(value)
    if not isinstance(value, str):
        raise ValueError(DURATION_MESSAGE)
    text = value.strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return _seconds(_number(text))
    if not _DURATION_WHOLE.fullmatch(text):
        raise ValueError(DURATION_MESSAGE)
    parts = _DURATION_PART.findall(text)
    return _seconds(sum(_number(n) * _DURATION_UNITS[unit] for n, unit in parts))


def _number(digits: str) -> int:
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        raise ValueError(DURATION_TOO_LARGE)
    return int(digits)


def _seconds(seconds: int) -> timedelta:
    if abs(seconds) > _MAX_DAYS * _DURATION_UNITS["d"]:
        raise ValueError(DURATION_TOO_LARGE)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest spelling ``parse_duration`` reads back to the same value (``"30m"``)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "m"):
        if seconds % _DURATION_UNITS[unit] == 0:
            return f"{seconds // _DURATION_UNITS[unit]}{unit}"
    return f"{seconds}s"


def moment_before(now: datetime, span: timedelta) -> datetime:
    """``now - span``; ValueError (``MOMENT_OUT_OF_RANGE``) past what a datetime holds."""
    try:
        return now - span
    except OverflowError:
        raise ValueError(MOMENT_OUT_OF_RANGE) from None


def parse_moment(value: str, *, now: datetime) -> datetime:
    """A duration back from ``now`` (``"1h"``, ``"7d"``: what `parse_duration` reads) or an
    RFC 3339 time with an offset (``"2026-01-01T00:00:00Z"``), as an aware time in UTC.

    Raises ValueError saying which: ``MOMENT_MESSAGE`` for neither, ``DURATION_TOO_LARGE``,
    ``MOMENT_NEEDS_OFFSET`` for a local time, ``MOMENT_OUT_OF_RANGE`` beyond the years 1 to
    9999 in UTC (``999999999d`` back, ``0001-01-01T00:00:00+01:00``).
    """
    text = value.strip()
    if _PLAIN_NUMBER.fullmatch(text) or _DURATION_WHOLE.fullmatch(text):
        return moment_before(now, parse_duration(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(MOMENT_MESSAGE) from None
    if moment.utcoffset() is None:
        raise ValueError(MOMENT_NEEDS_OFFSET)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(MOMENT_OUT_OF_RANGE) from None


def parse_byte_size(value: object) -> int:
    """``"10MB"`` (10·1000²), ``"10MiB"`` (10·1024²), ``"512KB"``, ``"1GB"`` or whole bytes.

    Units are case-insensitive. Raises ValueError (with ``SIZE_MESSAGE``) for anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(SIZE_MESSAGE)
    match = _SIZE.fullmatch(value.strip())
    if match is None or match[2].lower() not in _SIZE_UNITS:
        raise ValueError(SIZE_MESSAGE)
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def _positive_error() -> PydanticCustomError:
    return PydanticCustomError("greater_than", "Input should be greater than {gt}", {"gt": 0})


def _validate_duration(value: object) -> timedelta:
    try:
        parsed = parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration_parsing", str(exc)) from None
    if parsed <= timedelta(0):
        raise _positive_error()
    return parsed


def _validate_non_negative_duration(value: object) -> timedelta:
    try:
        parsed = parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration_parsing", str(exc)) from None
    if parsed < timedelta(0):
        raise PydanticCustomError(
            "greater_than_equal", "Input should be greater than or equal to {ge}", {"ge": 0}
        )
    return parsed


def _validate_in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("moment_out_of_range", MOMENT_OUT_OF_RANGE) from None


def _validate_byte_size(value: object) -> int:
    try:
        parsed = parse_byte_size(value)
    except ValueError:
        raise PydanticCustomError("size_parsing", SIZE_MESSAGE) from None
    if parsed <= 0:
        raise _positive_error()
    return parsed


Duration = Annotated[
    timedelta,
    PlainValidator(_validate_duration, json_schema_input_type=str | int),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A positive duration; written ``"30s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"6y"`` or seconds."""

NonNegativeDuration = Annotated[
    timedelta,
    PlainValidator(_validate_non_negative_duration, json_schema_input_type=str | int),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""Like ``Duration`` but zero is allowed (a clock-skew leeway of ``0s``)."""

ByteSize = Annotated[
    int,
    PlainValidator(_validate_byte_size, json_schema_input_type=str | int),
]
"""A positive number of bytes; written ``"512KB"``, ``"10MB"``, ``"1GiB"`` or whole bytes."""

UtcMoment = Annotated[AwareDatetime, AfterValidator(_validate_in_utc)]
"""An RFC 3339 time with an offset, as an aware time in UTC. One that falls outside the years
1 to 9999 once in UTC (``9999-12-31T23:59:59-01:00``) is refused here: it cannot be stored or
compared, so it must not reach a store as an overflow."""
