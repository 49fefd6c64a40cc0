"""The base model every bastion.yaml section derives from, and the small value types they share."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

KeyPath: TypeAlias = tuple[str | int, ...]
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigModel(BaseModel):
    """A frozen section of bastion.yaml: camelCase keys, unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class NestedValueError(ValueError):
    """A model validator's findings about keys below the model, each with its relative key path.

    Pydantic can only place a model validator's error at the model itself; the loader appends
    each ``relative_path`` so the user sees ``security.rbac.roles[1].inherits``.
    """

    def __init__(self, issues: Sequence[tuple[KeyPath, str]]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(_located(path, message) for path, message in self.issues))


def format_key_path(path: KeyPath) -> str:
    """``("gateway", "routes", 2, "method")`` → ``gateway.routes[2].method``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _located(path: KeyPath, message: str) -> str:
    return f"{format_key_path(path)}: {message}" if path else message


class ReferencedText(str):
    """A string the loader took from ``${VAR}``, ``env:`` or ``file:``.

    Environment variables and files only hold text, so these are the one kind of string a
    boolean or number key accepts (``maxConcurrent: ${MAX}``); written in the file, ``"12"``
    or ``"yes"`` is an error. Validated values are plain ``str`` again.
    """

    __slots__ = ()


def _strict_bool(value: object) -> object:
    # YAML gives real booleans; a string ("yes", "true") or a number is a mistake.
    if isinstance(value, bool | ReferencedText):
        return value
    raise PydanticCustomError("bool_type", "Input should be a valid boolean")


def _strict_int(value: object) -> object:
    # Python would quietly take True as 1, 12.0 as 12 and "12" as 12.
    if isinstance(value, int | ReferencedText) and not isinstance(value, bool):
        return value
    raise PydanticCustomError("int_type", "Input should be a valid integer")


def _strict_float(value: object) -> object:
    if isinstance(value, int | float | ReferencedText) and not isinstance(value, bool):
        return value
    raise PydanticCustomError("float_type", "Input should be a valid number")


Bool = Annotated[bool, BeforeValidator(_strict_bool)]
"""``true`` or ``false`` as YAML writes them (or from a reference)."""

Int = Annotated[int, BeforeValidator(_strict_int)]
"""A YAML integer (or one from a reference); never a boolean, a float or a written string."""

Float = Annotated[float, BeforeValidator(_strict_float), Field(allow_inf_nan=False)]
"""A finite YAML number (or one from a reference); never a boolean or a written string."""

PositiveInt = Annotated[Int, Field(gt=0)]
PositiveFloat = Annotated[Float, Field(gt=0)]
Port = Annotated[Int, Field(ge=1, le=65535)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _parse_network(value: object) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("network_type", "must be a CIDR range like 10.0.0.0/8")
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise PydanticCustomError(
            "network_parsing", "must be a CIDR range like 10.0.0.0/8 or fd00::/8"
        ) from None


Cidr = Annotated[
    IPNetwork,
    PlainValidator(_parse_network, json_schema_input_type=str),
    PlainSerializer(str, return_type=str),
]
"""An IPv4 or IPv6 network; host bits are allowed and cleared (``10.1.2.3/8`` is ``10.0.0.0/8``)."""


def _min_secret_length(minimum: int) -> AfterValidator:
    message = "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"

    def check(value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < minimum:
            raise PydanticCustomError("secret_too_short", message)
        return value

    return AfterValidator(check)


Secret = Annotated[SecretStr, _min_secret_length(1)]
"""A credential: never printed, never part of an error message."""

StrongSecret = Annotated[SecretStr, _min_secret_length(32)]
"""A server-side key (pepper, session secret): at least 32 characters."""


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url_scheme", "must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise PydanticCustomError("url_credentials", "must not contain a user name or password")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise PydanticCustomError("url_port", "must have a port from 1 to 65535")
    if parts.fragment:
        raise PydanticCustomError("url_fragment", "must not contain a #fragment")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
"""An ``http://`` or ``https://`` URL, kept as written."""


def _as_utc(value: datetime) -> datetime:
    # YAML timestamps without an offset are UTC (YAML 1.1 timestamp type).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A point in time, in UTC; a value without an offset is read as UTC."""

_NAME = re.compile(r"\*|[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "name_parsing", "must be a name of letters, digits, _ . and - (or *)"
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]
"""A resource type or action name (``patterns``, ``read``), or ``*`` for any."""


def is_name(value: str) -> bool:
    """Whether ``value`` is a valid ``Name``."""
    return _NAME.fullmatch(value) is not None
