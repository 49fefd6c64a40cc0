"""The authorization parts of a loaded bastion.yaml: `AuthzSettings` and the use cases."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bastion.backends.protocols import Storage
from bastion.config import BastionConfig
from bastion.core.cedar_schema import generate_schema
from bastion.core.model import AuditEvent, SubjectType
from bastion.core.names import canonical_name
from bastion.core.rbac import Permission, RoleDefinition
from bastion.core.resource_rules import ResourceRule, parse_resource
from bastion.errors import PolicyError
from bastion.services.audit import append_events
from bastion.services.authz import Authorizer
from bastion.services.authz_admin import AuthzAdmin, ModelBroadcast
from bastion.services.authz_checks import AuthzChecks
from bastion.services.authz_model import (
    AuthzSettings,
    ConfiguredRule,
    PlatformBinding,
    StaticBinding,
)
from bastion.services.clock import Clock
from bastion.services.policies import PolicyEngine
from bastion.services.policies_watch import PolicyWatcher


def _subject_name(kind: str, name: str) -> str:
    # Principals and groups are stored under their canonical names.
    del kind
    return canonical_name(name)


def authz_settings_from(config: BastionConfig) -> AuthzSettings:
    """Custom roles, bindings, platform bindings, resource rules and the default role."""
    rbac = config.security.rbac
    default_tenant = config.security.default_tenant
    roles = [
        RoleDefinition(
            name=role.name,
            permissions=tuple(
                Permission(rule.resource, action)
                for rule in role.permissions
                for action in rule.actions
            ),
            inherits=tuple(role.inherits),
        )
        for role in rbac.roles
    ]
    bindings = [
        StaticBinding(
            subject_type=SubjectType(b.subject.type),
            subject_name=_subject_name(b.subject.type, b.subject.name),
            role=b.role,
            tenant=b.tenant or default_tenant,
            expires_at=b.expires,
        )
        for b in rbac.bindings
    ]
    platform = [
        PlatformBinding(
            subject_type=SubjectType(b.subject.type),
            subject_name=_subject_name(b.subject.type, b.subject.name),
            role=b.role,
            home=b.tenant or default_tenant,
            targets=frozenset(b.target_tenants),
            via=f"security.rbac.platformBindings[{index}]",
            expires_at=b.expires,
        )
        for index, b in enumerate(rbac.platform_bindings)
    ]
    rules = []
    for index, rule in enumerate(rbac.resource_rules):
        resource_type, resource_id = parse_resource(rule.resource)
        compiled = ResourceRule(
            resource_type=resource_type,
            resource_id=resource_id,
            allowed_users=frozenset(canonical_name(u) for u in rule.allowed_users),
            allowed_roles=frozenset(rule.allowed_roles),
            actions=frozenset(rule.actions) or None,
            via=f"security.rbac.resourceRules[{index}]",
        )
        rules.append(ConfiguredRule(rule.tenant or default_tenant, compiled))
    return AuthzSettings(
        roles=roles,
        bindings=bindings,
        platform_bindings=platform,
        rules=rules,
        default_role=rbac.default_role,
        default_tenant=default_tenant,
    )


def route_permissions(config: BastionConfig) -> dict[tuple[str, str], str]:
    """(resource, action) → the permission the first route with them requires."""
    found: dict[tuple[str, str], str] = {}
    for route in config.gateway.routes:
        found.setdefault((route.resource, route.action), route.effective_permission)
    return found


class ModelBus(ModelBroadcast, Protocol):
    def listen(self, *, on_change: Callable[[], None], on_health: Callable[[bool], None]) -> None:
        """Call ``on_change`` for every change another replica announces."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class AuthzServices:
    """The authorization use cases beyond the per-request decision, and their background work
    (policy file watcher, SIGHUP, the replicas' change broadcast)."""

    checks: AuthzChecks
    admin: AuthzAdmin
    authorizer: Authorizer
    policies: PolicyEngine | None = None
    watcher: PolicyWatcher | None = None
    bus: ModelBus | None = None

    def start(self) -> None:
        """Start watching policy files (and SIGHUP, from the main thread) and the bus."""
        if self.watcher is not None:
            self.watcher.start()
            if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
                watcher = self.watcher
                signal.signal(signal.SIGHUP, lambda *_: watcher.request_reload())
        if self.bus is not None:
            self.bus.listen(
                on_change=self.authorizer.invalidate, on_health=self.authorizer.broadcast_health
            )

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.bus is not None:
            self.bus.close()


def build_authz(
    config: BastionConfig,
    *,
    storage: Storage,
    clock: Clock,
    authorizer: Authorizer,
    bus: ModelBus | None = None,
) -> AuthzServices:
    checks = AuthzChecks(
        storage=storage,
        authorizer=authorizer,
        permissions=route_permissions(config),
        clock=clock,
        default_tenant=config.security.default_tenant,
    )
    admin = AuthzAdmin(storage=storage, authorizer=authorizer, clock=clock, broadcast=bus)
    if bus is not None:
        authorizer.broadcast_health(False)
    engine = policy_engine_from(config, storage=storage, clock=clock)
    if engine is None:
        return AuthzServices(checks, admin, authorizer, bus=bus)
    authorizer.policies = engine
    interval = config.security.policies.reload_interval.total_seconds()
    watcher = PolicyWatcher(engine, interval=interval)
    return AuthzServices(checks, admin, authorizer, engine, watcher, bus)


# Resources and actions of bastion's own admin API, so policies may name them.
ADMIN_RESOURCES: tuple[str, ...] = ("apikeys", "audit", "authz", "bindings", "groups")
ADMIN_RESOURCES += ("identity", "policies", "roles", "rules", "tenants", "users")
ADMIN_ACTIONS = ("check", "create", "delete", "manage", "read", "reload", "update")


def generated_schema(config: BastionConfig) -> dict[str, Any]:
    """The Cedar schema for this configuration's routes, roles and the admin API."""
    resources = set(ADMIN_RESOURCES)
    actions = set(ADMIN_ACTIONS)
    for route in config.gateway.routes:
        resources.add(route.resource)
        actions.add(route.action)
    for role in config.security.rbac.roles:
        for rule in role.permissions:
            resources.add(rule.resource)
            actions.update(rule.actions)
    return generate_schema(resources, actions)


def policy_engine_from(
    config: BastionConfig, *, storage: Storage, clock: Clock
) -> PolicyEngine | None:
    """The policy engine with its first set loaded, or None without ``security.policies``.

    `PolicyError` when the first load fails: bastion does not start on a bad policy set.
    """
    section = config.security.policies
    if not section.files:
        return None
    schema = json.dumps(generated_schema(config))
    if section.schema_file is not None:
        try:
            schema = Path(section.schema_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{section.schema_file}: cannot read ({exc.strerror})") from None

    def record(event: AuditEvent) -> None:
        with storage.transaction() as tx:
            append_events(tx, [event])

    engine = PolicyEngine(
        files=[Path(f) for f in section.files],
        schema=schema,
        clock=clock.now,
        record=record,
        tenant=config.security.default_tenant,
    )
    engine.load()
    return engine
