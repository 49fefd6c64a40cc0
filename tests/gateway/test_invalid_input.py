"""Validation errors said for a person: where (a path through the document sent) and why,
never a model's class name, a union member's tag or the value sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.errors import InvalidBodyError, UnsupportedMediaTypeError
from bastion.gateway.invalid_input import MAX_ISSUES, invalid_input, unparsable_body


def error(kind: str, loc: tuple[Any, ...], **ctx: Any) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": "Input should be a valid thing", "ctx": ctx}


@pytest.mark.parametrize(
    ("errors", "body", "detail"),
    [
        (
            [error("string_too_long", ("body", "name"), max_length=254)],
            {"name": "x"},
            "name: must be at most 254 characters",
        ),
        (
            [error("missing", ("body", "CheckIn", "principal"))],
            {"requests": []},
            "principal: is required",
        ),
        (
            [error("too_short", ("body", "batch", "requests"), min_length=1)],
            {"requests": []},
            "requests: must hold at least 1 item",
        ),
        (
            [error("string_too_short", ("body", "requests", 0, "principal"), min_length=1)],
            {"requests": [{"principal": ""}]},
            "requests/0/principal: must not be empty",
        ),
        ([error("int_parsing", ("body", "ttl", "int"))], {"ttl": "x"}, "ttl: must be an integer"),
        (
            [error("literal_error", ("body", "algorithm"), expected="'RS256' or 'ES256'")],
            {"algorithm": "HS256"},
            "algorithm: must be 'RS256' or 'ES256'",
        ),
        ([error("model_attributes_type", ("body",))], [1], "the body must be a JSON object"),
        ([error("missing", ("body",))], None, "the body is required"),
        (
            [error("int_parsing", ("query", "limit"))],
            None,
            "query parameter limit: must be an integer",
        ),
        ([error("some_new_type", ("body", "x"))], {"x": 1}, "x: must be a valid thing"),
    ],
)
def test_detail_names_the_place_and_the_rule(
    errors: list[dict[str, Any]], body: Any, detail: str
) -> None:
    assert str(invalid_input(errors, body, content_type="application/json")) == detail


def test_detail_never_holds_the_value_sent() -> None:
    secret = "bk_live_" + "Z" * 40
    errors = [dict(error("string_too_long", ("body", "name"), max_length=5), input=secret)]
    assert secret not in str(invalid_input(errors, {"name": secret}, content_type=None))


def test_many_issues_are_cut_short() -> None:
    errors = [error("missing", ("body", f"f{n}")) for n in range(MAX_ISSUES + 5)]
    assert str(invalid_input(errors, {}, content_type=None)).endswith("; and 5 more")


def test_unparsed_body_is_415_naming_what_was_sent() -> None:
    refused = invalid_input(
        [error("model_attributes_type", ("body",))],
        b"a=b",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert isinstance(refused, UnsupportedMediaTypeError)
    assert (
        str(refused) == "the body must be application/json, not application/x-www-form-urlencoded"
    )


@pytest.mark.parametrize("text", ['{\n  "name": \n', '{"a": 1,\n "b": tru}', "[1, 2"])
def test_json_syntax_error_has_the_parsers_line_and_column(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(text)
    found = parsed.value
    errors = [{"type": "json_invalid", "loc": ("body", found.pos), "ctx": {"error": found.msg}}]
    refused = invalid_input(errors, text, content_type="application/json")
    assert isinstance(refused, InvalidBodyError)
    where = f"(line {found.lineno}, column {found.colno})"
    assert str(refused).startswith(f"the body is not valid JSON {where}: ")


def test_unparsable_body_says_why() -> None:
    assert unparsable_body(RecursionError()).reason == "json_too_deep"
    assert str(unparsable_body(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))) == (
        "the body is not UTF-8 text"
    )
