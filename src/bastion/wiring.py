"""Builds bastion's object graph from a loaded configuration: the one place objects are wired.

The CLI and `bastion.gateway.app.build_app` both start here; nothing else constructs services.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.backends import open_storage
from bastion.backends.protocols import Storage
from bastion.config import BastionConfig
from bastion.core.model import SubjectType
from bastion.core.rbac import Permission, PermissionSet, RoleDefinition, compile_roles
from bastion.core.routes import PathSet, RouteSpec, RouteTable
from bastion.crypto.keys import KeyedHasher, WeakPepperError
from bastion.errors import ConfigError, ConfigIssue
from bastion.services.access import AccessService
from bastion.services.apikeys import ApiKeyService
from bastion.services.authn import Authenticator
from bastion.services.authz import Authorizer, StaticBinding
from bastion.services.clock import Clock, SystemClock


@dataclass(frozen=True)
class Services:
    config: BastionConfig
    storage: Storage
    clock: Clock
    hasher: KeyedHasher
    api_keys: ApiKeyService
    authorizer: Authorizer
    access: AccessService


def hasher_from(config: BastionConfig) -> KeyedHasher:
    pepper = config.security.pepper
    if pepper is None:
        raise ConfigError(
            [
                ConfigIssue(
                    "security.pepper",
                    "required to store credentials; `bastion init` writes one"
                    " (file:bastion.pepper)",
                )
            ]
        )
    try:
        return KeyedHasher(pepper.get_secret_value().encode())
    except WeakPepperError as exc:
        raise ConfigError([ConfigIssue("security.pepper", str(exc))]) from None


def compiled_roles(config: BastionConfig) -> dict[str, PermissionSet]:
    definitions = [
        RoleDefinition(
            name=role.name,
            permissions=tuple(
                Permission(rule.resource, action)
                for rule in role.permissions
                for action in rule.actions
            ),
            inherits=tuple(role.inherits),
        )
        for role in config.security.rbac.roles
    ]
    return compile_roles(definitions)


def authorizer_from(config: BastionConfig) -> Authorizer:
    rbac = config.security.rbac
    if not rbac.enabled:
        raise ConfigError(
            [
                ConfigIssue(
                    "security.rbac.enabled",
                    "bastion always authorizes; to let every principal do everything, "
                    "set security.rbac.defaultRole: admin instead",
                )
            ]
        )
    static = [
        StaticBinding(
            subject_type=SubjectType(binding.subject.type),
            subject_name=binding.subject.name,
            role=binding.role,
            tenant=binding.tenant,
            expires_at=binding.expires,
        )
        for binding in rbac.bindings
    ]
    return Authorizer(
        roles=compiled_roles(config), static_bindings=static, default_role=rbac.default_role
    )


def route_table_from(config: BastionConfig) -> RouteTable:
    return RouteTable(
        [
            RouteSpec(
                method=str(route.method),
                path=route.path,
                resource=route.resource,
                action=route.action,
                permission=route.effective_permission,
                event=route.effective_event,
                resource_id=route.id,
            )
            for route in config.gateway.routes
        ]
    )


def build_services(
    config: BastionConfig, *, clock: Clock | None = None, storage: Storage | None = None
) -> Services:
    clock = clock or SystemClock()
    hasher = hasher_from(config)
    authorizer = authorizer_from(config)
    storage = storage or open_storage(config.storage.url)
    api_keys = ApiKeyService(storage=storage, hasher=hasher, clock=clock)
    access = AccessService(
        storage=storage,
        authenticator=Authenticator([api_keys]),
        authorizer=authorizer,
        routes=route_table_from(config),
        public_paths=PathSet(list(config.gateway.public_paths)),
        clock=clock,
    )
    return Services(config, storage, clock, hasher, api_keys, authorizer, access)
