"""Values are strictly typed: a string is not a boolean or a number, a boolean is not an
integer, a number is finite; only text from ``${VAR}`` / ``env:`` / ``file:`` is converted."""

from __future__ import annotations

import textwrap
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, BeforeValidator, PlainValidator

from bastion.config import BastionConfig, load_config, parse_config
from bastion.config.models_base import ReferencedText
from bastion.errors import ConfigError


def issues_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), environ=environ or {})
    return [str(issue) for issue in caught.value.issues]


RATE_LIMIT_ENABLED = "security.rateLimit.enabled: must be true or false"
MIN_LENGTH = "security.authentication.passwords.minLength"
RPS = "security.rateLimit.global.requestsPerSecond"


@pytest.mark.parametrize("written", ['"yes"', '"true"', "'false'", "1", "0", "1.0", "[]"])
def test_boolean_key_refuses_strings_and_numbers(written: str) -> None:
    assert issues_of(f"security: {{rateLimit: {{enabled: {written}}}}}") == [RATE_LIMIT_ENABLED]


@pytest.mark.parametrize("written", ["true", "false", "yes", "no", "on", "off"])
def test_boolean_key_takes_yaml_booleans(written: str) -> None:
    config = parse_config(f"security: {{rateLimit: {{enabled: {written}}}}}", environ={})
    assert config.security.rate_limit.enabled is (written in ("true", "yes", "on"))


@pytest.mark.parametrize("written", ['"12"', "true", "false", "12.0", "12.5", '""'])
def test_integer_key_refuses_strings_booleans_and_floats(written: str) -> None:
    text = f"security: {{authentication: {{passwords: {{minLength: {written}}}}}}}"
    assert issues_of(text) == [f"{MIN_LENGTH}: must be an integer"]


def test_integer_key_still_checks_its_bounds() -> None:
    text = "security: {authentication: {passwords: {minLength: 7}}}"
    assert issues_of(text) == [f"{MIN_LENGTH}: must be at least 8"]


def test_port_refuses_a_string() -> None:
    text = "security: {audit: {syslog: {host: logs.internal, port: '514'}}}"
    assert issues_of(text) == ["security.audit.syslog.port: must be an integer"]


@pytest.mark.parametrize("written", [".inf", "-.inf", ".nan", "1.0e+400"])
def test_number_key_must_be_finite(written: str) -> None:
    text = f"security: {{rateLimit: {{global: {{requestsPerSecond: {written}, burstSize: 5}}}}}}"
    assert issues_of(text) == [f"{RPS}: must be a finite number"]


@pytest.mark.parametrize("written", ['"5"', "1e400", "true"])
def test_number_key_refuses_strings_and_booleans(written: str) -> None:
    # YAML 1.1 reads 1e400 (no dot, no exponent sign) as a string.
    text = f"security: {{rateLimit: {{global: {{requestsPerSecond: {written}, burstSize: 5}}}}}}"
    assert issues_of(text) == [f"{RPS}: must be a number"]


def test_number_key_takes_integers_and_floats() -> None:
    text = "security: {rateLimit: {global: {requestsPerSecond: 2, burstSize: 5}}}"
    limits = parse_config(text, environ={}).security.rate_limit.global_
    assert limits is not None and limits.requests_per_second == 2.0


def test_references_are_read_as_the_type_of_their_key(tmp_path: Path) -> None:
    (tmp_path / "burst").write_text("7\n")
    (tmp_path / "bastion.yaml").write_text(
        textwrap.dedent(
            """
            security:
              rateLimit:
                enabled: ${RATE_LIMITS}
                global: {requestsPerSecond: "env:RPS", burstSize: "file:burst"}
              authentication:
                passwords: {minLength: "${MIN_LENGTH:-14}"}
            """
        )
    )
    environ = {"RATE_LIMITS": "true", "RPS": "2.5"}
    config = load_config(tmp_path / "bastion.yaml", environ=environ)
    limits = config.security.rate_limit
    assert limits.enabled is True
    assert limits.global_ is not None
    assert (limits.global_.requests_per_second, limits.global_.burst_size) == (2.5, 7)
    assert config.security.authentication.passwords.min_length == 14


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("maybe", RATE_LIMIT_ENABLED),
        ("inf", f"{RPS}: must be a finite number"),
        ("lots", f"{RPS}: must be a number"),
    ],
)
def test_reference_text_that_is_not_of_the_key_type_is_an_error(value: str, expected: str) -> None:
    text = """
    security:
      rateLimit:
        enabled: ${V}
        global: {requestsPerSecond: "${V}", burstSize: 5}
    """
    found = issues_of(text, environ={"V": value})
    assert expected in found


def test_validated_strings_are_plain_strings() -> None:
    config = parse_config("security: {defaultTenant: '${T}'}", environ={"T": "acme"})
    assert type(config.security.default_tenant) is str
    assert not isinstance(config.security.default_tenant, ReferencedText)


_STRICT = ("_strict_bool", "_strict_int", "_strict_float")


def _loose_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Keys typed bool / int / float without a strict validator (or a unit's own parser)."""
    loose: list[str] = []

    def visit(annotation: object, path: str) -> None:
        if annotation in (bool, int, float):
            loose.append(path)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            loose.extend(_loose_fields(annotation, f"{path}."))
        elif typing.get_origin(annotation) is typing.Annotated:
            base, *metadata = typing.get_args(annotation)
            if base in (bool, int, float) and _checked(metadata):
                return
            visit(base, path)
        else:
            for arg in typing.get_args(annotation):
                visit(arg, path)

    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        if field.annotation in (bool, int, float) and _checked(field.metadata):
            continue
        visit(field.annotation, path)
    return loose


def _checked(metadata: list[object]) -> bool:
    return any(
        isinstance(item, PlainValidator)
        or (isinstance(item, BeforeValidator) and getattr(item.func, "__name__", "") in _STRICT)
        for item in metadata
    )


def test_every_boolean_and_number_key_is_strictly_typed() -> None:
    assert _loose_fields(BastionConfig) == []
