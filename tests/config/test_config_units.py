"""Durations and byte sizes as people write them in bastion.yaml."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from bastion.config import ByteSize, Duration, parse_byte_size, parse_config, parse_duration
from bastion.config.units import format_duration
from bastion.errors import ConfigError

DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15s", timedelta(seconds=15)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("7d", 7 * DAY),
        ("2w", 14 * DAY),
        ("365d", 365 * DAY),
        ("6y", 6 * 365 * DAY),
        ("1h30m", timedelta(minutes=90)),
        (" 45 s ", timedelta(seconds=45)),
        ("90", timedelta(seconds=90)),
        (90, timedelta(seconds=90)),
    ],
)
def test_duration_spellings(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "m", "1.5h", "-5s", "5 minutes", "30M", "1hour", True, 1.5, None, "1h 30"]
)
def test_malformed_durations_are_rejected(text: object) -> None:
    with pytest.raises(ValueError, match="must be a duration like 30s, 15m, 1h, 7d"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["15s", "30m", "2h", "7d", "2w", "365d", "6y", "1h30m", "61"])
def test_format_duration_reads_back_to_the_same_value(value: str) -> None:
    parsed = parse_duration(value)
    assert parse_duration(format_duration(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10MB", 10_000_000),
        ("100MB", 100_000_000),
        ("10MiB", 10 * 1024 * 1024),
        ("512KB", 512_000),
        ("512KiB", 512 * 1024),
        ("1GB", 1_000_000_000),
        ("1GiB", 1024**3),
        ("2 mb", 2_000_000),
        ("300B", 300),
        ("4096", 4096),
        (4096, 4096),
    ],
)
def test_size_spellings(text: str | int, expected: int) -> None:
    assert parse_byte_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "10XB", "1.5MB", "-1MB", "10 megabytes", True, None])
def test_malformed_sizes_are_rejected(text: object) -> None:
    with pytest.raises(ValueError, match="must be a size like 512KB, 10MB, 1GiB"):
        parse_byte_size(text)


class Limits(BaseModel):
    wait: Duration
    body: ByteSize


def test_units_validate_inside_models_and_must_be_positive() -> None:
    limits = Limits.model_validate({"wait": "30s", "body": "1MiB"})
    assert limits.wait == timedelta(seconds=30)
    assert limits.body == 1024 * 1024
    assert limits.model_dump(mode="json") == {"wait": "30s", "body": 1048576}
    with pytest.raises(ValidationError) as caught:
        Limits.model_validate({"wait": "0s", "body": 0})
    assert [error["type"] for error in caught.value.errors()] == ["greater_than", "greater_than"]


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999999999d",
        "1000000000d",
        "142857143w",
        "1" + "0" * 5000 + "s",
        "86400000000000",
        10**20,
        -(10**20),
    ],
)
def test_duration_beyond_what_a_timedelta_holds_is_too_large(value: object) -> None:
    with pytest.raises(ValueError, match=r"^is too large \(at most 999999999d\)$"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["999999999d", "0000000000000000000001s", "10000000000s"])
def test_long_numbers_within_range_are_durations(value: str) -> None:
    assert parse_duration(value) <= timedelta(days=999_999_999)


def test_too_large_duration_in_a_config_is_one_line() -> None:
    for written in ("99999999999999999999d", "99999999999999999999"):
        with pytest.raises(ConfigError) as caught:
            parse_config(f"security: {{audit: {{retention: {written}}}}}", environ={})
        assert [str(i) for i in caught.value.issues] == [
            "security.audit.retention: is too large (at most 999999999d)"
        ]
