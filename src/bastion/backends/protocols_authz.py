"""The storage protocols of the authorization model: role bindings, custom roles, resource
rules and the model version (re-exported by `bastion.backends.protocols`)."""

from __future__ import annotations

import builtins
from typing import Protocol

from bastion.core.model import CustomRole, ResourceRuleRecord, RoleBinding, SubjectType

__all__ = [
    "AuthzVersionStore",
    "BindingKey",
    "BindingStore",
    "ResourceRuleStore",
    "RoleStore",
    "binding_key",
]


# A binding's place in a paged list: (subject type, subject name, role), unique in a tenant.
BindingKey = tuple[str, str, str]


def binding_key(binding: RoleBinding) -> BindingKey:
    return (str(binding.subject_type), binding.subject_name, binding.role)


class BindingStore(Protocol):
    def create(self, binding: RoleBinding) -> None:
        """Store a binding; `ConflictError` for the same subject, role and tenant twice."""

    def for_subject(
        self, tenant_id: str, subject_type: SubjectType, subject_name: str
    ) -> list[RoleBinding]:
        """The bindings of one subject in one tenant, expired ones included."""

    def list(self, tenant_id: str) -> list[RoleBinding]:
        """Every binding of the tenant, ordered by subject type, subject name and role."""

    def page(
        self, tenant_id: str, *, after: BindingKey | None, limit: int | None
    ) -> builtins.list[RoleBinding]:
        """The tenant's bindings after ``after`` (subject type, subject name, role; all when
        None), at most ``limit`` (no bound when None), ordered by those three in code-point
        order."""

    def get(self, tenant_id: str, binding_id: str) -> RoleBinding:
        """`NotFoundError` if absent from that tenant."""

    def delete(self, tenant_id: str, binding_id: str) -> RoleBinding:
        """Remove a binding and return it; `NotFoundError` if absent from that tenant."""


class RoleStore(Protocol):
    """Custom roles defined through the admin API, per tenant."""

    def create(self, role: CustomRole) -> None:
        """Store a role; `ConflictError` if its name is taken in its tenant."""

    def update(self, role: CustomRole) -> None:
        """Replace permissions and inherits; `NotFoundError` if absent from its tenant."""

    def get(self, tenant_id: str, name: str) -> CustomRole:
        """`NotFoundError` if absent from that tenant."""

    def list(self, tenant_id: str) -> list[CustomRole]:
        """Every custom role of the tenant, ordered by name."""

    def delete(self, tenant_id: str, name: str) -> None:
        """`NotFoundError` if absent from that tenant."""


class ResourceRuleStore(Protocol):
    """Resource rules (allowed users / roles per resource instance), per tenant."""

    def create(self, rule: ResourceRuleRecord) -> None:
        """Store a rule; `ConflictError` if the instance already has one in its tenant."""

    def get(self, tenant_id: str, rule_id: str) -> ResourceRuleRecord:
        """`NotFoundError` if absent from that tenant."""

    def list(self, tenant_id: str) -> list[ResourceRuleRecord]:
        """Every rule of the tenant, ordered by resource type and id."""

    def page(
        self, tenant_id: str, *, after: tuple[str, str] | None, limit: int | None
    ) -> builtins.list[ResourceRuleRecord]:
        """The tenant's rules ordered by resource type, then id, in code-point order: those
        after ``after`` (a type and an id), at most ``limit``."""

    def naming(
        self, tenant_id: str, *, user: str | None = None, role: str | None = None
    ) -> builtins.list[ResourceRuleRecord]:
        """The tenant's rules whose ``allowedUsers`` hold ``user`` or whose ``allowedRoles``
        hold ``role`` (exactly), ordered as `list`."""

    def update(self, rule: ResourceRuleRecord) -> None:
        """Replace the stored rule's allowed users, roles and actions (its resource and
        creation time stay); `NotFoundError` if absent from that tenant."""

    def delete(self, tenant_id: str, rule_id: str) -> None:
        """`NotFoundError` if absent from that tenant."""


class AuthzVersionStore(Protocol):
    """A counter that grows with every change of roles, bindings or rules (compiled-model
    caches of every replica compare against it)."""

    def current(self) -> int:
        """The current version (0 before any change)."""

    def bump(self) -> int:
        """Advance the version inside this unit of work and return the new value."""
