"""The API key format: shape, checksum, and rejection before any look-up."""

from __future__ import annotations

import pytest

from bastion.core.apikeys import (
    API_KEY_LENGTH,
    display_prefix,
    format_api_key,
    is_well_formed_api_key,
)
from bastion.crypto.keys import new_api_key

GOOD = format_api_key("A" * 16 + "b" * 16)


def test_new_keys_are_well_formed_and_distinct() -> None:
    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("bk_live_")
        assert len(key) == API_KEY_LENGTH
        assert is_well_formed_api_key(key)


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "bk_live_",
        GOOD[:-1],
        GOOD + "0",
        GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"),  # checksum off by one character
        "bk_test_" + GOOD[8:],
        GOOD.replace("A", "-", 1),
        GOOD.upper(),
        " " + GOOD[1:],
        "pk_live_abc123",
    ],
)
def test_malformed_or_checksum_failing_key_rejected(candidate: str) -> None:
    assert not is_well_formed_api_key(candidate)


def test_single_character_typo_fails_checksum() -> None:
    key = new_api_key()
    position = 12
    replacement = "a" if key[position] != "a" else "b"
    assert not is_well_formed_api_key(key[:position] + replacement + key[position + 1 :])


def test_display_prefix_reveals_only_six_random_characters() -> None:
    assert display_prefix(GOOD) == GOOD[:14]


def test_random_part_must_be_base62_of_the_right_length() -> None:
    with pytest.raises(ValueError):
        format_api_key("short")
    with pytest.raises(ValueError):
        format_api_key("_" * 32)
