"""Changing the authorization model: custom roles, role bindings and resource rules, per tenant.

Every change and its audit event commit in one transaction (which also advances the stored
authorization version); then this replica's compiled models are dropped and the change is
broadcast to the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from bastion.backends.protocols import BindingKey, Storage, UnitOfWork
from bastion.core.ids import new_id
from bastion.core.model import CustomRole, ResourceRuleRecord, RoleBinding, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.core.rbac import Permission
from bastion.core.resource_rules import parse_resource
from bastion.errors import ConflictError, RequestRejectedError
from bastion.services.audit import append_events, build_event
from bastion.services.authz import Authorizer
from bastion.services.authz_model import compile_catalog
from bastion.services.authz_roles import RoleView, catalog_with, role_name, role_views
from bastion.services.changes import unique
from bastion.services.clock import Clock
from bastion.services.lookups import get_binding, get_custom_role, get_rule, get_tenant
from bastion.services.subject_bindings import (
    SUBJECT_NOUNS,
    delete_bindings_to,
    remove_from_rules,
    require_rule_names,
    require_subject,
)

T = TypeVar("T")


class ModelBroadcast(Protocol):
    def publish(self) -> None:
        """Tell other replicas that the authorization model changed (best effort)."""


class NoBroadcast:
    """One replica, or no Redis: other replicas notice through the stored version."""

    def publish(self) -> None:
        return None


class AuthzAdmin:
    def __init__(
        self,
        *,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
        broadcast: ModelBroadcast | None = None,
    ) -> None:
        self._storage = storage
        self._authorizer = authorizer
        self._clock = clock
        self._broadcast = broadcast or NoBroadcast()

    def _change(self, tenant_name: str, work: Callable[[UnitOfWork, Tenant], T]) -> T:
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            result = work(tx, tenant)
        self._authorizer.invalidate()
        self._broadcast.publish()
        return result

    def _audit(
        self, tx: UnitOfWork, tenant: Tenant, action: str, target: dict[str, Any], **kw: Any
    ) -> None:
        event = build_event(
            action=action,
            outcome="success",
            tenant=tenant.name,
            now=self._clock.now(),
            actor=kw.pop("actor"),
            resource=target,
            details=kw,
        )
        append_events(tx, [event])

    # -- roles ----------------------------------------------------------------------------

    def list_roles(self, tenant_name: str) -> list[RoleView]:
        with self._storage.transaction() as tx:
            stored = tx.roles.list(get_tenant(tx, tenant_name).id)
        return role_views(self._authorizer.settings, stored)

    def save_role(
        self,
        *,
        tenant_name: str,
        name: str,
        permissions: Sequence[str],
        inherits: Sequence[str],
        actor: dict[str, Any],
        create: bool,
    ) -> CustomRole:
        """Create (or replace, ``create`` False) a custom role; a cycle or an unknown role
        is a `RequestRejectedError` that names it, as is a new name `role_name` refuses.
        Answers the role as saved (its name trimmed)."""
        name = role_name(name) if create else name.strip()
        try:
            perms = tuple(str(Permission.parse(p)) for p in permissions)
        except ValueError as exc:
            raise RequestRejectedError(str(exc)) from None

        def work(tx: UnitOfWork, tenant: Tenant) -> CustomRole:
            now = self._clock.now()
            role = CustomRole(new_id("rol"), tenant.id, name, perms, tuple(inherits), now, now)
            catalog_with(self._authorizer.settings, tx.roles.list(tenant.id), role, new=create)
            stale: dict[str, Any] = {}
            if create:
                with unique(f"a role named {name} already exists"):
                    tx.roles.create(role)
                # Only bindings and rules stored before they went with their role (or whose
                # role left bastion.yaml) can name a new role: they meant another one.
                if found := delete_bindings_to(tx, tenant.id, name):
                    stale["staleBindingsDeleted"] = found
                if found := remove_from_rules(tx, tenant.id, role=name):
                    stale["staleRulesUpdated"] = found
            else:
                role = CustomRole(
                    get_custom_role(tx, tenant, name).id,
                    tenant.id,
                    name,
                    perms,
                    role.inherits,
                    now,
                    now,
                )
                tx.roles.update(role)
            action = "role.create" if create else "role.update"
            self._audit(
                tx,
                tenant,
                action,
                {"type": "role", "id": name},
                actor=actor,
                permissions=list(perms),
                inherits=list(role.inherits),
                **stale,
            )
            return role

        return self._change(tenant_name, work)

    def delete_role(self, *, tenant_name: str, name: str, actor: dict[str, Any]) -> None:
        def work(tx: UnitOfWork, tenant: Tenant) -> None:
            get_custom_role(tx, tenant, name)
            heirs = sorted(r.name for r in tx.roles.list(tenant.id) if name in r.inherits)
            if heirs:
                raise ConflictError(f"role {name} is inherited by {', '.join(heirs)}")
            tx.roles.delete(tenant.id, name)
            details = {}
            if unbound := delete_bindings_to(tx, tenant.id, name):
                details["bindingsDeleted"] = unbound
            if unruled := remove_from_rules(tx, tenant.id, role=name):
                details["rulesUpdated"] = unruled
            self._audit(
                tx, tenant, "role.delete", {"type": "role", "id": name}, actor=actor, **details
            )

        self._change(tenant_name, work)

    # -- bindings -------------------------------------------------------------------------

    def list_bindings(
        self, tenant_name: str, *, after: BindingKey | None = None, limit: int | None = None
    ) -> list[RoleBinding]:
        """The tenant's stored bindings by subject type, subject name and role: those after
        ``after``, at most ``limit`` (a page of the admin API), else all of them."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            return tx.bindings.page(tenant.id, after=after, limit=limit)

    def get_binding(self, tenant_name: str, binding_id: str) -> RoleBinding:
        with self._storage.transaction() as tx:
            return get_binding(tx, get_tenant(tx, tenant_name), binding_id)

    def bind(
        self,
        *,
        tenant_name: str,
        subject_type: SubjectType,
        subject_name: str,
        role: str,
        expires_at: datetime | None,
        actor: dict[str, Any],
    ) -> RoleBinding:
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise RequestRejectedError("the binding would expire before it starts")

        def work(tx: UnitOfWork, tenant: Tenant) -> RoleBinding:
            catalog = compile_catalog(self._authorizer.settings, tx.roles.list(tenant.id))
            if role not in catalog:
                raise RequestRejectedError(f"unknown role {role}")
            require_subject(tx, tenant, SubjectType(subject_type), subject_name)
            binding = RoleBinding(
                new_id("bnd"),
                tenant.id,
                SubjectType(subject_type),
                canonical_name(subject_name),
                role,
                now,
                expires_at,
            )
            subject = f"{SUBJECT_NOUNS[binding.subject_type]} {binding.subject_name}"
            with unique(f"{subject} is already bound to role {role}"):
                tx.bindings.create(binding)
            self._audit(
                tx,
                tenant,
                "binding.create",
                {"type": "binding", "id": binding.id},
                actor=actor,
                subject={"type": str(binding.subject_type), "name": binding.subject_name},
                role=role,
                expires=expires_at.isoformat() if expires_at else None,
            )
            return binding

        return self._change(tenant_name, work)

    def unbind(self, *, tenant_name: str, binding_id: str, actor: dict[str, Any]) -> RoleBinding:
        def work(tx: UnitOfWork, tenant: Tenant) -> RoleBinding:
            binding = tx.bindings.delete(tenant.id, get_binding(tx, tenant, binding_id).id)
            self._audit(
                tx,
                tenant,
                "binding.delete",
                {"type": "binding", "id": binding.id},
                actor=actor,
                subject={"type": str(binding.subject_type), "name": binding.subject_name},
                role=binding.role,
            )
            return binding

        return self._change(tenant_name, work)

    # -- resource rules -------------------------------------------------------------------

    def list_rules(
        self, tenant_name: str, *, after: tuple[str, str] | None = None, limit: int | None = None
    ) -> list[ResourceRuleRecord]:
        """The tenant's stored rules by resource type and id: those after ``after`` (a type
        and an id), at most ``limit`` (a page of the admin API), else all of them."""
        with self._storage.transaction() as tx:
            tenant = get_tenant(tx, tenant_name)
            return tx.resource_rules.page(tenant.id, after=after, limit=limit)

    def get_rule(self, tenant_name: str, rule_id: str) -> ResourceRuleRecord:
        with self._storage.transaction() as tx:
            return get_rule(tx, get_tenant(tx, tenant_name), rule_id)

    def add_rule(
        self,
        *,
        tenant_name: str,
        resource: str,
        allowed_users: Sequence[str],
        allowed_roles: Sequence[str],
        actions: Sequence[str],
        actor: dict[str, Any],
    ) -> ResourceRuleRecord:
        try:
            resource_type, resource_id = parse_resource(resource)
        except ValueError as exc:
            raise RequestRejectedError(str(exc)) from None

        def work(tx: UnitOfWork, tenant: Tenant) -> ResourceRuleRecord:
            rule = ResourceRuleRecord(
                new_id("rul"),
                tenant.id,
                resource_type,
                resource_id,
                tuple(canonical_name(u) for u in allowed_users),
                tuple(allowed_roles),
                tuple(actions),
                self._clock.now(),
            )
            try:
                tx.resource_rules.create(rule)
            except ConflictError:
                raise ConflictError(
                    f"{resource_type}/{resource_id} already has"
                    f" {_rule_on(tx, tenant, resource_type, resource_id)}"
                    " (one rule per resource instance; delete it first)"
                ) from None
            # Checked once the instance is known to be free: that refusal says more.
            catalog = compile_catalog(self._authorizer.settings, tx.roles.list(tenant.id))
            require_rule_names(tx, tenant, rule.allowed_users, rule.allowed_roles, catalog)
            self._audit(
                tx,
                tenant,
                "rule.create",
                {"type": "rule", "id": rule.id},
                actor=actor,
                resource=resource,
                allowedUsers=list(rule.allowed_users),
                allowedRoles=list(rule.allowed_roles),
                actions=list(rule.actions),
            )
            return rule

        return self._change(tenant_name, work)

    def delete_rule(self, *, tenant_name: str, rule_id: str, actor: dict[str, Any]) -> None:
        def work(tx: UnitOfWork, tenant: Tenant) -> None:
            rule = get_rule(tx, tenant, rule_id)
            tx.resource_rules.delete(tenant.id, rule_id)
            resource = f"{rule.resource_type}/{rule.resource_id}"
            self._audit(
                tx,
                tenant,
                "rule.delete",
                {"type": "rule", "id": rule_id},
                actor=actor,
                resource=resource,
            )

        self._change(tenant_name, work)


def _rule_on(tx: UnitOfWork, tenant: Tenant, resource_type: str, resource_id: str) -> str:
    """The id of the stored rule on one resource instance (read only to name it in a refusal;
    "a rule" should the conflict have been another)."""
    on = (resource_type, resource_id)
    rules = tx.resource_rules.list(tenant.id)
    found = (f"rule {r.id}" for r in rules if (r.resource_type, r.resource_id) == on)
    return next(found, "a rule")
