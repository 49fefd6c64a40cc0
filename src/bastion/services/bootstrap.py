"""First start: the default tenant, its admin user bound to ``admin``, and an admin API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.backends.protocols import Storage
from bastion.core.ids import new_id
from bastion.core.model import Principal, PrincipalKind, RoleBinding, SubjectType, Tenant
from bastion.errors import ConflictError, NotFoundError
from bastion.services.apikeys import ApiKeyService, IssuedKey
from bastion.services.audit import append_events, build_event
from bastion.services.changes import valid_name
from bastion.services.clock import Clock


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    tenant: Tenant
    admin: Principal
    admin_key: IssuedKey


def initialise(
    *,
    storage: Storage,
    api_keys: ApiKeyService,
    clock: Clock,
    tenant_name: str,
    admin_name: str,
    actor: dict[str, Any],
) -> Bootstrapped:
    """Create the tenant, admin and admin key in one transaction; ConflictError if done before."""
    now = clock.now()
    # Held to the rules `bastion tenant create` and `bastion user create` apply.
    tenant_name = valid_name(tenant_name, "tenant")
    admin_name = valid_name(admin_name, "user")
    with storage.transaction() as tx:
        try:
            tx.tenants.get_by_name(tenant_name)
        except NotFoundError:
            pass
        else:
            raise ConflictError(f"tenant {tenant_name!r} is already initialised")
        tenant = Tenant(id=new_id("ten"), name=tenant_name, created_at=now)
        tx.tenants.create(tenant)
        admin = Principal(
            id=new_id("usr"),
            tenant_id=tenant.id,
            kind=PrincipalKind.USER,
            name=admin_name,
            display_name="Administrator",
            created_at=now,
        )
        tx.principals.create(admin)
        binding = RoleBinding(
            id=new_id("bnd"),
            tenant_id=tenant.id,
            subject_type=SubjectType.USER,
            subject_name=admin.name,
            role="admin",
            created_at=now,
        )
        tx.bindings.create(binding)
        append_events(
            tx,
            [
                build_event(
                    action="tenant.create",
                    outcome="success",
                    tenant=tenant.name,
                    now=now,
                    actor=actor,
                    resource={"type": "tenant", "id": tenant.name},
                ),
                build_event(
                    action="user.create",
                    outcome="success",
                    tenant=tenant.name,
                    now=now,
                    actor=actor,
                    resource={"type": "user", "id": admin.name},
                ),
                build_event(
                    action="binding.create",
                    outcome="success",
                    tenant=tenant.name,
                    now=now,
                    actor=actor,
                    resource={"type": "binding", "id": binding.id},
                    details={"subject": admin.name, "role": "admin"},
                ),
            ],
        )
        issued = api_keys.issue(
            tx,
            tenant=tenant,
            owner=admin,
            name="bootstrap-admin",
            scopes=["admin"],
            expires_at=None,
            actor=actor,
        )
    return Bootstrapped(tenant, admin, issued)
