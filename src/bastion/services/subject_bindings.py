"""Stored role bindings live exactly as long as their subject (a principal or a group) and
their role; stored resource rules name only users and roles that exist.

A binding names its subject by kind and canonical name, not by id, so a binding that outlived
its subject would pass to the next principal or group created under that name. Hence: a new
binding must name a subject that exists in its tenant (`require_subject`); deleting a subject
deletes its bindings in the same transaction (`delete_bindings_of`); and creating a subject
deletes any bindings still stored under its name, which only a database written before this
rule can hold (`forget_stale`). Likewise a binding names its role by name: deleting a custom
role deletes the bindings to it (`delete_bindings_to`), or whoever held it would hold whatever a
later role of that name grants.

A resource rule's ``allowedUsers`` and ``allowedRoles`` are names too, and the same holds for
them: a new rule may name only users and roles that exist (`require_rule_names`); deleting a
user or a custom role takes its name out of every stored rule (`remove_from_rules`; a rule left
naming nobody admits nobody); creating one takes out what an older bastion left behind.
Bindings and rules declared in bastion.yaml are not stored and are untouched: they name
whoever holds the name, on purpose.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from bastion.backends.protocols import UnitOfWork
from bastion.core.model import PrincipalKind, SubjectType, Tenant
from bastion.core.names import canonical_name
from bastion.errors import NotFoundError, RequestRejectedError
from bastion.services.lookups import NOUNS

# What each kind of subject is called in messages.
SUBJECT_NOUNS = {SubjectType(kind.value): noun for kind, noun in NOUNS.items()} | {
    SubjectType.GROUP: "group"
}


def require_subject(
    tx: UnitOfWork,
    tenant: Tenant,
    subject_type: SubjectType,
    name: str,
    purpose: str = "binding a role to it",
) -> None:
    """`RequestRejectedError` naming the subject unless a group, or a principal of that kind,
    called ``name`` (any spelling) exists in the tenant; the message says to create it before
    ``purpose``."""
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
            f" (create it before {purpose})"
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


def require_rule_names(
    tx: UnitOfWork,
    tenant: Tenant,
    users: Iterable[str],
    roles: Iterable[str],
    known_roles: Collection[str],
) -> None:
    """`RequestRejectedError` naming the first of ``users`` that is no user of the tenant, or
    the first of ``roles`` not in ``known_roles`` (built in, bastion.yaml or custom)."""
    for user in users:
        require_subject(tx, tenant, SubjectType.USER, user, "naming it in a resource rule")
    for role in roles:
        if role not in known_roles:
            raise RequestRejectedError(f"unknown role {role}")


def remove_from_rules(
    tx: UnitOfWork, tenant_id: str, *, user: str | None = None, role: str | None = None
) -> list[str]:
    """Take ``user`` (a canonical user name) out of every stored rule's ``allowedUsers`` and
    ``role`` out of every ``allowedRoles``; return the ids of the rules changed, sorted. Each
    goes through `ResourceRuleStore.update`, which advances the authorization version."""
    changed = []
    for rule in tx.resource_rules.naming(tenant_id, user=user, role=role):
        users = tuple(u for u in rule.allowed_users if u != user)
        roles = tuple(r for r in rule.allowed_roles if r != role)
        if (users, roles) != (rule.allowed_users, rule.allowed_roles):
            tx.resource_rules.update(replace(rule, allowed_users=users, allowed_roles=roles))
            changed.append(rule.id)
    return sorted(changed)


def forget_stale(
    tx: UnitOfWork, tenant_id: str, subject_type: SubjectType, name: str
) -> dict[str, list[str]]:
    """For a subject just created: delete the bindings, and (a user) take the name out of the
    rules, that an older bastion left under its name; answer what went, as event details."""
    details = {}
    if found := delete_bindings_of(tx, tenant_id, subject_type, name):
        details["staleBindingsDeleted"] = found
    if subject_type is SubjectType.USER and (rules := remove_from_rules(tx, tenant_id, user=name)):
        details["staleRulesUpdated"] = rules
    return details
