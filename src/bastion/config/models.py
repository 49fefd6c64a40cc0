"""The whole bastion.yaml as one frozen model, ``BastionConfig``, and the ``storage:`` section."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from types import UnionType

from pydantic import BaseModel, Field, field_validator

from bastion.config.models_audit import (
    AuditConfig,
    AuditFileConfig,
    CloudWatchConfig,
    ElasticsearchConfig,
    RotationConfig,
    SplunkConfig,
    SyslogConfig,
)
from bastion.config.models_base import ConfigModel
from bastion.config.models_gateway import GatewayConfig, RouteConfig, TimeoutsConfig
from bastion.config.models_identity import (
    AgentAuthConfig,
    AuthenticationConfig,
    JwtConfig,
    MtlsConfig,
    OidcConfig,
    SsoConfig,
)
from bastion.config.models_rbac import (
    BindingConfig,
    PermissionRuleConfig,
    RbacConfig,
    RoleConfig,
    SubjectConfig,
)
from bastion.config.models_security import (
    RateLimitConfig,
    SecretsConfig,
    SecurityConfig,
    SessionsConfig,
)

__all__ = [
    "AgentAuthConfig",
    "AuditConfig",
    "AuditFileConfig",
    "AuthenticationConfig",
    "BastionConfig",
    "BindingConfig",
    "CloudWatchConfig",
    "ElasticsearchConfig",
    "GatewayConfig",
    "JwtConfig",
    "MtlsConfig",
    "OidcConfig",
    "PermissionRuleConfig",
    "RateLimitConfig",
    "RbacConfig",
    "RoleConfig",
    "RotationConfig",
    "RouteConfig",
    "SecretsConfig",
    "SecurityConfig",
    "SessionsConfig",
    "SplunkConfig",
    "SsoConfig",
    "StorageConfig",
    "SubjectConfig",
    "SyslogConfig",
    "TimeoutsConfig",
    "config_key_paths",
]

_DATABASE_SCHEMES = ("sqlite:///", "postgresql+psycopg://", "postgresql://")


class StorageConfig(ConfigModel):
    """The database (source of truth) and the optional Redis for shared counters and broadcasts.

    The URLs may carry passwords, so they are left out of ``repr``.
    """

    url: str = Field(default="sqlite:///./bastion.db", repr=False)
    redis_url: str | None = Field(default=None, repr=False)
    redis_prefix: str = "bastion:"

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(_DATABASE_SCHEMES):
            raise ValueError("must start with sqlite:///, postgresql+psycopg:// or postgresql://")
        if value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class BastionConfig(ConfigModel):
    """A whole bastion.yaml. Every section is optional; an empty file is a working default."""

    security: SecurityConfig = SecurityConfig()
    gateway: GatewayConfig = GatewayConfig()
    storage: StorageConfig = StorageConfig()


def config_key_paths(model: type[BaseModel] = BastionConfig, prefix: str = "") -> list[str]:
    """Every key a config file may contain, as dotted alias paths.

    List items are written ``[]`` (``gateway.routes[].method``) and the free-form names of a
    mapping such as ``security.secrets`` as ``<name>``. Used by the docs test and the
    enforcement table's self-check.
    """
    paths: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        paths.append(path)
        for nested, suffix in _nested_models(field.annotation):
            paths.extend(config_key_paths(nested, f"{path}{suffix}."))
    if model.model_config.get("extra") == "allow":
        extra = typing.get_type_hints(model).get("__pydantic_extra__")
        for nested, _ in _nested_models(typing.get_args(extra)[-1] if extra else None):
            paths.extend(config_key_paths(nested, f"{prefix}<name>."))
    return paths


def _nested_models(annotation: object) -> Iterator[tuple[type[BaseModel], str]]:
    """The models inside an annotation, with "[]" when they sit in a tuple or list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, ""
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _nested_models(args[0])
    elif origin in (tuple, list):
        for nested, suffix in _nested_models(args[0]):
            yield nested, "[]" + suffix
    elif origin in (typing.Union, UnionType):
        for arg in args:
            yield from _nested_models(arg)
