"""Reading the YAML itself: duplicate and non-string keys, deep nesting and ``!!binary`` are
one precise line each, with a key path or a file position, never an unexpected exception."""

from __future__ import annotations

import pytest
import yaml

from bastion.config import parse_config, yaml_reader
from bastion.config.yaml_reader import MAX_DEPTH
from bastion.errors import ConfigError


def issues_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bastion.yaml", environ={})
    return [str(issue) for issue in caught.value.issues]


def test_duplicate_key_is_reported_at_its_key_path_and_position() -> None:
    text = "gateway:\n  listen: a:1\n  listen: b:2\n"
    assert issues_of(text) == ["gateway.listen: duplicate key (bastion.yaml:3:3)"]


def test_every_duplicate_key_is_reported_in_file_order() -> None:
    text = "security:\n  rbac:\n    enabled: true\n    enabled: true\n  pepper: a\nsecurity: {}\n"
    assert issues_of(text) == [
        "security.rbac.enabled: duplicate key (bastion.yaml:4:5)",
        "security: duplicate key (bastion.yaml:6:1)",
    ]


def test_duplicate_key_inside_a_list_item_has_its_index() -> None:
    text = "gateway:\n  routes:\n    - {method: GET, method: POST}\n"
    assert issues_of(text) == ["gateway.routes[0].method: duplicate key (bastion.yaml:3:21)"]


def test_merge_key_may_be_overridden() -> None:
    config = parse_config(
        "security:\n  authentication:\n    passwords:\n      <<: {requireDigits: false}\n"
        "      requireDigits: true\n",
        environ={},
    )
    assert config.security.authentication.passwords.require_digits is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1: 2\n", "bastion.yaml:1:1: keys must be strings"),
        ("null: 2\n", "bastion.yaml:1:1: keys must be strings"),
        ("? [a, b]\n: 1\n", "bastion.yaml:1:3: keys must be strings"),
        ("? {a: b}\n: 1\n", "bastion.yaml:1:3: keys must be strings"),
        ("security:\n  on: 1\n", "security: keys must be strings (bastion.yaml:2:3)"),
        (
            "gateway:\n  routes:\n    - {1: x}\n",
            "gateway.routes[0]: keys must be strings (bastion.yaml:3:8)",
        ),
    ],
)
def test_key_that_is_not_a_string_is_one_located_error(text: str, expected: str) -> None:
    assert issues_of(text) == [expected]


def test_quoted_key_is_a_string() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("'1': 2\n", environ={})
    assert [str(issue) for issue in caught.value.issues] == ["1: unknown key"]


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 2000 + "]" * 2000 + "\n",
        "a:\n" + "- " * 2000 + "x\n",
        "a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n",
    ],
    ids=["flow-lists", "block-lists", "flow-mappings"],
)
def test_deep_nesting_is_refused_with_a_position(text: str) -> None:
    [issue] = issues_of(text)
    assert issue.startswith("bastion.yaml:1:") or issue.startswith("bastion.yaml:2:")
    assert issue.endswith(f"nested deeper than {MAX_DEPTH} levels")


def test_reading_uses_libyaml() -> None:
    """PyYAML's wheels carry libyaml; its parser reads a large file several times faster."""
    assert issubclass(yaml_reader._ConfigLoader, yaml.CSafeLoader)


@pytest.mark.parametrize(
    ("depth", "where"), [(60, "bastion.yaml:1:53"), (5000, "bastion.yaml")], ids=["deep", "runaway"]
)
def test_deep_nesting_is_refused_by_the_pure_python_parser_too(
    depth: int, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PyYAML built without libyaml composes recursively: a runaway nesting must end as the
    same one-line error, not a RecursionError."""

    class PureLoader(yaml.SafeLoader):
        pass

    monkeypatch.setattr(yaml_reader, "_ConfigLoader", PureLoader)
    [issue] = issues_of("a: " + "[" * depth + "]" * depth + "\n")
    assert issue == f"{where}: nested deeper than {MAX_DEPTH} levels"


def test_nesting_through_aliases_is_refused_at_a_key_path() -> None:
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 200)]
    [issue] = issues_of("\n".join(lines) + "\n")
    assert issue.startswith("a49[0][0]")  # the first key whose value nests too deep
    assert issue.endswith(f": nested deeper than {MAX_DEPTH} levels")


def test_nesting_within_the_limit_is_read() -> None:
    text = "a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n"
    assert issues_of(text) == ["a: unknown key"]


def test_binary_value_is_not_a_string() -> None:
    assert issues_of("gateway: {listen: !!binary aGVsbG8=}\n") == [
        "gateway.listen: must be a string"
    ]


def test_binary_value_is_not_a_number() -> None:
    text = "security: {sessions: {maxConcurrent: !!binary MQ==}}\n"
    assert issues_of(text) == ["security.sessions.maxConcurrent: must be an integer"]
