"""The ``gateway:`` section: where bastion listens, what it protects and the route table."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bastion.config.models_base import (
    Bool,
    Cidr,
    ConfigModel,
    HttpUrl,
    Name,
    NestedValueError,
    PositiveInt,
    is_name,
)
from bastion.config.units import Duration, NonNegativeDuration
from bastion.core.hosts import host_pattern_problem
from bastion.core.routes import TemplateError, default_event, template_params, template_segments

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"]

_LISTEN_MESSAGE = "must be host:port (or [ipv6]:port) with a port from 1 to 65535"
_ID_PARAM = re.compile(r"\{([^{}]*)\}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EVENT = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def split_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", 8080)``; ``"[::1]:8080"`` → ``("::1", 8080)``."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ValueError(_LISTEN_MESSAGE)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(_LISTEN_MESSAGE) from None
    else:
        host, sep, port = value.rpartition(":")
        # An unbracketed IPv6 address has two readings ("::1:80"): refuse it.
        if not sep or not host or ":" in host:
            raise ValueError(_LISTEN_MESSAGE)
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(_LISTEN_MESSAGE)
    return host, int(port)


def _check_listen(value: str) -> str:
    try:
        split_listen(value)
    except ValueError as exc:
        raise PydanticCustomError("listen_parsing", str(exc)) from None
    return value


def _check_template(value: str) -> str:
    try:
        segments = template_segments(value)
    except TemplateError as exc:
        raise PydanticCustomError("path_template", str(exc)) from None
    names = [segment[1:-1] for segment in segments if segment.startswith("{")]
    if len(names) != len(set(names)):
        raise PydanticCustomError("path_template", "uses the same {name} twice")
    return value


def _check_permission(value: str) -> str:
    resource, sep, action = value.partition(":")
    if not sep or not is_name(resource) or not is_name(action):
        raise PydanticCustomError("permission_parsing", "must be resource:action")
    return value


def _check_event(value: str) -> str:
    if not _EVENT.fullmatch(value):
        raise PydanticCustomError("event_parsing", "must be an audit action name like pattern.read")
    return value


def _id_template_problem(template: str, known: set[str]) -> str | None:
    names = _ID_PARAM.findall(template)
    well_formed = template.count("{") == template.count("}") == len(names)
    if not well_formed or not all(_PARAM_NAME.fullmatch(name) for name in names):
        return "must be a template like {id} or {owner}/{name}"
    unknown = [name for name in names if name not in known]
    if unknown:
        return f"references {{{unknown[0]}}}, which is not a parameter of path"
    return None


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _normalise_upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.query:
        raise PydanticCustomError("url_query", "must not contain a ?query")
    path = parts.path.rstrip("/")
    if path:
        try:
            template_segments(path)
        except TemplateError as exc:
            raise PydanticCustomError("url_path", f"path {exc}") from None
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


PathTemplate = Annotated[str, AfterValidator(_check_template)]


class RouteConfig(ConfigModel):
    """One row of the route table: method + path template → resource, id and action."""

    method: Annotated[HttpMethod, BeforeValidator(_upper)]
    path: PathTemplate
    resource: Name
    action: Name
    id: str | None = None
    permission: Annotated[str, AfterValidator(_check_permission)] | None = None
    event: Annotated[str, AfterValidator(_check_event)] | None = None
    ip_allowlist: tuple[Cidr, ...] | None = None

    @field_validator("ip_allowlist")
    @classmethod
    def _allowlist_not_empty(cls, value: tuple[Cidr, ...] | None) -> tuple[Cidr, ...] | None:
        if value is not None and not value:
            raise ValueError("must list at least one range (leave it out to allow any address)")
        return value

    @model_validator(mode="after")
    def _id_params_exist(self) -> RouteConfig:
        if self.id is not None:
            problem = _id_template_problem(self.id, template_params(self.path))
            if problem:
                raise NestedValueError([(("id",), problem)])
        return self

    @property
    def effective_permission(self) -> str:
        """``permission`` if set, else ``resource:action``."""
        return self.permission or f"{self.resource}:{self.action}"

    @property
    def effective_event(self) -> str:
        """``event`` if set, else the singular resource + action (``pattern.read``)."""
        if self.event:
            return self.event
        return default_event(self.resource, self.action)


class TimeoutsConfig(ConfigModel):
    """How long bastion waits for the upstream, and for a client's request head."""

    connect: Duration = timedelta(seconds=5)
    read: Duration = timedelta(seconds=30)
    total: Duration = timedelta(seconds=60)
    request_head: Duration = timedelta(seconds=30)
    request_body: Duration = timedelta(seconds=60)


class ConnectionsConfig(ConfigModel):
    """How many connections one ``bastion serve`` process holds open: in all, and from one
    client address (an IPv6 client by its /64); ``perClient: null`` caps only the total.
    Addresses in ``trustedProxies`` are not capped per client."""

    max: PositiveInt = 10_000
    per_client: PositiveInt | None = 512

    @model_validator(mode="after")
    def _per_client_within_max(self) -> ConnectionsConfig:
        if self.per_client is not None and self.per_client > self.max:
            raise NestedValueError(
                [(("perClient",), f"must be at most max ({self.max}), the cap on all connections")]
            )
        return self


class WebSocketConfig(ConfigModel):
    """Open WebSockets: how often their credential and authorization are decided again."""

    recheck: Duration = timedelta(seconds=30)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\*")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _check_host_pattern(value: str) -> str:
    problem = host_pattern_problem(value)
    if problem is not None:
        raise PydanticCustomError("host_pattern", problem)
    return value


HostPattern = Annotated[str, AfterValidator(_check_host_pattern)]


def _check_origin(value: str) -> str:
    if not _ORIGIN.fullmatch(value):
        raise PydanticCustomError(
            "origin_parsing", "must be an origin like https://app.example.com (no path), or *"
        )
    return value.lower()


def _check_token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise PydanticCustomError("token_parsing", "must be an HTTP method or header name")
    return value


class CorsConfig(ConfigModel):
    """Cross-origin requests from browsers: which origins may call, and with what."""

    enabled: Bool = False
    allow_origins: tuple[Annotated[str, AfterValidator(_check_origin)], ...] = ()
    allow_methods: tuple[Annotated[str, AfterValidator(_check_token)], ...] = (
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    )
    allow_headers: tuple[Annotated[str, AfterValidator(_check_token)], ...] = (
        "authorization",
        "content-type",
        "x-api-key",
    )
    expose_headers: tuple[Annotated[str, AfterValidator(_check_token)], ...] = ()
    allow_credentials: Bool = False
    max_age: NonNegativeDuration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _credentials_need_origins(self) -> CorsConfig:
        if self.allow_credentials and "*" in self.allow_origins:
            message = "* cannot be combined with allowCredentials: true; list the origins"
            raise NestedValueError([(("allowOrigins",), message)])
        if self.enabled and not self.allow_origins:
            raise NestedValueError([(("allowOrigins",), "required when cors is enabled")])
        return self


class HstsConfig(ConfigModel):
    """Strict-Transport-Security, sent on responses served over TLS."""

    enabled: Bool = True
    max_age: Duration = timedelta(days=365)
    include_sub_domains: Bool = True
    preload: Bool = False


_FRAME_SOURCE = re.compile(r"'none'|'self'|https?://[A-Za-z0-9.*-]+(?::[0-9]{1,5})?")


def _check_frame_source(value: str) -> str:
    if not _FRAME_SOURCE.fullmatch(value):
        raise PydanticCustomError(
            "frame_source", "must be 'none', 'self' or an origin like https://app.example.com"
        )
    return value


ReferrerPolicy = Literal[
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
]


class SecurityHeadersConfig(ConfigModel):
    """Headers bastion adds to every response (the upstream's own values are kept)."""

    hsts: HstsConfig = HstsConfig()
    referrer_policy: ReferrerPolicy = "no-referrer"
    frame_ancestors: Annotated[
        tuple[Annotated[str, AfterValidator(_check_frame_source)], ...], Field(min_length=1)
    ] = ("'none'",)


def prefix_problem(value: str) -> str | None:
    """Why ``value`` cannot be bastion's URL prefix (``gateway.prefix``), or None."""
    if not value.startswith("/") or value.endswith("/"):
        return "must start with / and not end with / (like /_bastion)"
    try:
        template_segments(value)
    except TemplateError as exc:
        return str(exc)
    if any(ch in value for ch in "{}*"):
        return "must be a literal path, without {name} or *"
    if not _PREFIX_CHARS.fullmatch(value):
        return "must be a URL path of letters, digits and -._~!$&'()+,;=:@ (no space or ?)"
    return None


# RFC 3986 path characters, less "%" (an encoded prefix would never match a canonical path).
_PREFIX_CHARS = re.compile(r"[A-Za-z0-9._~!$&'()+,;=:@/-]+")


class GatewayConfig(ConfigModel):
    """The edge: listen address, upstream, bastion's own URL prefix, routes and proxies."""

    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:8080"
    upstream: Annotated[HttpUrl, AfterValidator(_normalise_upstream)] | None = None
    prefix: str = "/_bastion"
    routes: tuple[RouteConfig, ...] = ()
    public_paths: tuple[PathTemplate, ...] = ()
    trusted_proxies: tuple[Cidr, ...] = ()
    allowed_hosts: tuple[HostPattern, ...] = ()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    connections: ConnectionsConfig = ConnectionsConfig()
    websocket: WebSocketConfig = WebSocketConfig()
    cors: CorsConfig = CorsConfig()
    security_headers: SecurityHeadersConfig = SecurityHeadersConfig()

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        problem = prefix_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @property
    def host(self) -> str:
        """The host part of ``listen`` (brackets removed from an IPv6 address)."""
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return split_listen(self.listen)[1]
