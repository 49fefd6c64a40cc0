"""Stored role bindings live exactly as long as their subject (a principal or a group) and
their role.

A binding names its subject by kind and canonical name, not by id, so a binding that outlived
its subject would pass to the next principal or group created under that name. Hence: a new
binding must name a subject that exists in its tenant (`require_subject`); deleting a subject
deletes its bindings in the same transaction (`delete_bindings_of`); and creating a subject
deletes any bindings still stored under its name, which only a database written before this
rule can hold. Likewise a binding names its role by name: deleting a custom role deletes the
bindings to it (`delete_bindings_to`), or whoever held it would hold whatever a later role of
that name grants. Bindings declared in bastion.yaml are not stored and are untouched: they
name whoever holds the name, on purpose.
"""

from __future__ import annotations

from bastion.backends.protocols import UnitOfWork
from bastion.core.model import PrincipalKind, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.errors import NotFoundError, RequestRejectedError
from bastion.services.lookups import NOUNS

# What each kind of subject is called in messages.
SUBJECT_NOUNS = {SubjectType(kind.value): noun for kind, noun in NOUNS.items()} | {
    SubjectType.GROUP: "group"
}


def require_subject(tx: UnitOfWork, tenant: Tenant, subject_type: SubjectType, name: str) -> None:
    """`RequestRejectedError` naming the subject unless a group, or a principal of that kind,
    called ``name`` (any spelling) exists in the tenant."""
    canonical = canonical_name(name)
    try:
        if subject_type is SubjectType.GROUP:
            tx.groups.get_by_name(tenant.id, canonical)
            return
        principal = tx.principals.get_by_name(tenant.id, canonical)
    except NotFoundError:
        principal = None
    if principal is None or principal.kind is not PrincipalKind(subject_type.value):
        raise RequestRejectedError(
            f"no {SUBJECT_NOUNS[subject_type]} {canonical!r} in tenant {tenant.name!r}"
            " (create it before binding a role to it)"
        )


def delete_bindings_of(
    tx: UnitOfWork, tenant_id: str, subject_type: SubjectType, name: str
) -> list[str]:
    """Delete every stored binding of one subject and return their ids, sorted.

    Each goes through `BindingStore.delete`, the path `bastion role unbind` takes, which
    advances the authorization version in this transaction: compiled models are dropped.
    """
    found = tx.bindings.for_subject(tenant_id, subject_type, name)
    return sorted(tx.bindings.delete(tenant_id, binding.id).id for binding in found)


def delete_bindings_to(tx: UnitOfWork, tenant_id: str, role: str) -> list[str]:
    """Delete every stored binding to ``role`` and return their ids, sorted (each through
    `BindingStore.delete`, as `delete_bindings_of`)."""
    found = [b for b in tx.bindings.list(tenant_id) if b.role == role]
    return sorted(tx.bindings.delete(tenant_id, binding.id).id for binding in found)
