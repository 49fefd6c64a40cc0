"""Body rules: depth scanned before parsing, strict JSON, media types, string rewriting."""

from __future__ import annotations

import pytest

from bastion.core.bodies import (
    BodyRuleError,
    json_depth_exceeds,
    media_allowed,
    media_type,
    parse_json,
    rewrite_strings,
)


def test_depth_counts_arrays_and_objects_but_not_brackets_in_strings() -> None:
    assert not json_depth_exceeds(b'{"a": [[1]]}', 3)
    assert json_depth_exceeds(b'{"a": [[1]]}', 2)
    assert not json_depth_exceeds(b'{"a": "[[[[[[\\"[[[["}', 1)


def test_million_brackets_rejected_without_recursion() -> None:
    with pytest.raises(BodyRuleError) as info:
        parse_json(b"[" * 1_000_000, max_depth=32)
    assert info.value.code == "json_too_deep"


@pytest.mark.parametrize(
    "data", [b'{"a": 1, "a": 2}', b"[NaN]", b"[Infinity]", b"{", b'"\xff"', b""]
)
def test_ambiguous_or_malformed_json_rejected(data: bytes) -> None:
    with pytest.raises(BodyRuleError) as info:
        parse_json(data, max_depth=32)
    assert info.value.code == "invalid_json"


@pytest.mark.parametrize(
    ("header", "media"),
    [("Application/JSON; charset=utf-8", "application/json"), ("", None), (None, None)],
)
def test_media_type(header: str | None, media: str | None) -> None:
    assert media_type(header) == media


def test_media_allowed_exact_and_wildcards() -> None:
    assert media_allowed("text/plain", ["text/*"])
    assert media_allowed("application/json", ["application/json"])
    assert not media_allowed("application/xml", ["application/json", "text/*"])
    assert not media_allowed(None, ["*/*"])


def test_rewrite_touches_values_not_keys() -> None:
    document = {"<b>": ["<b>x</b>", 1, {"k": "<i>y</i>"}]}
    result, changed = rewrite_strings(document, lambda s: s.replace("<b>", ""))
    assert changed
    assert result == {"<b>": ["x</b>", 1, {"k": "<i>y</i>"}]}
    assert rewrite_strings({"a": "plain"}, str.upper)[0] == {"a": "PLAIN"}
