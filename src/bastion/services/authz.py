"""Authorization: which roles reach a principal (bindings) and what they allow (RBAC ∩ scopes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bastion.backends.protocols import UnitOfWork
from bastion.core.decision import Decision
from bastion.core.model import Principal, SubjectType
from bastion.core.rbac import Grant, PermissionSet, decide


@dataclass(frozen=True, slots=True)
class StaticBinding:
    """A binding declared in bastion.yaml (``security.rbac.bindings``)."""

    subject_type: SubjectType
    subject_name: str
    role: str
    tenant: str | None = None
    expires_at: datetime | None = None


class Authorizer:
    """Decides with compiled roles, stored bindings and the bindings from configuration."""

    def __init__(
        self,
        *,
        roles: Mapping[str, PermissionSet],
        static_bindings: Sequence[StaticBinding] = (),
        default_role: str | None = None,
    ) -> None:
        self.roles = roles
        self._static = static_bindings
        self._default_role = default_role

    def grants(
        self, tx: UnitOfWork, principal: Principal, *, tenant_name: str, now: datetime
    ) -> list[Grant]:
        """Every role that reaches ``principal`` now, each with the binding that brought it."""
        subject_type = SubjectType(principal.kind.value)
        stored = tx.bindings.for_subject(principal.tenant_id, subject_type, principal.name)
        grants = [Grant(b.role, f"binding {b.id}") for b in stored if b.is_active(now)]
        for index, binding in enumerate(self._static):
            if (
                binding.subject_type is subject_type
                and binding.subject_name == principal.name
                and binding.tenant in (None, tenant_name)
                and (binding.expires_at is None or now < binding.expires_at)
            ):
                grants.append(Grant(binding.role, f"security.rbac.bindings[{index}]"))
        if not grants and self._default_role is not None:
            grants.append(Grant(self._default_role, "security.rbac.defaultRole"))
        return grants

    def decide(
        self, grants: Sequence[Grant], *, scopes: Sequence[str] | None, resource: str, action: str
    ) -> Decision:
        return decide(
            grants=grants, roles=self.roles, scopes=scopes, resource=resource, action=action
        )
