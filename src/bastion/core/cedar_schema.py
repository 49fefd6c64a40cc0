"""Bastion's Cedar vocabulary: the schema of its entity types and the JSON of sliced entities.

Entity types: ``User``, ``ServiceAccount`` and ``Agent`` (principals), ``Group``, ``Role``,
``Tenant``, and one type per resource type of the route table (``patterns``), with ``-`` and
``.`` written ``_``. Actions are ``Action::"<action>"``. A principal's parents are its groups,
every role it holds (inherited ones included) and its tenant, so ``principal in Role::"viewer"``
means "holds viewer". Pure: builds dicts and JSON text, never calls Cedar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PRINCIPAL_TYPES = {"user": "User", "serviceAccount": "ServiceAccount", "agent": "Agent"}
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_RESERVED = {"true", "false", "if", "then", "else", "in", "is", "like", "has", "principal"}
_RESERVED |= {"action", "resource", "context", "__cedar", "Action"}
_RESERVED |= {"User", "ServiceAccount", "Agent", "Group", "Role", "Tenant"}


def cedar_type(resource: str) -> str:
    """The Cedar entity type of a bastion resource type (``audit-log`` → ``audit_log``)."""
    name = re.sub(r"[^_a-zA-Z0-9]", "_", resource)
    if not _IDENT.fullmatch(name) or name in _RESERVED:
        name = f"R_{name}"
    return name


def _principal_shape() -> dict[str, Any]:
    return {
        "type": "Record",
        "attributes": {
            "name": {"type": "String"},
            "tenant": {"type": "Entity", "name": "Tenant"},
        },
    }


def _context_shape() -> dict[str, Any]:
    route = {
        "method": {"type": "String"},
        "path": {"type": "String"},
        "template": {"type": "String", "required": False},
        "event": {"type": "String", "required": False},
    }
    return {
        "type": "Record",
        "attributes": {
            "clientIp": {"type": "Extension", "name": "ipaddr", "required": False},
            "time": {"type": "Long"},
            "mfa": {"type": "Boolean"},
            "authMethod": {"type": "String"},
            "tenant": {"type": "String"},
            "route": {"type": "Record", "attributes": route},
        },
    }


def generate_schema(resources: Iterable[str], actions: Iterable[str]) -> dict[str, Any]:
    """The Cedar JSON schema for bastion's entities, these resource types and actions."""
    principals = sorted(PRINCIPAL_TYPES.values())
    resource_types = sorted({cedar_type(r) for r in resources if r != "*"})
    entity_types: dict[str, Any] = {
        "Tenant": {},
        "Role": {"memberOfTypes": ["Role"]},
        "Group": {"memberOfTypes": ["Tenant"]},
    }
    for principal in principals:
        entity_types[principal] = {
            "memberOfTypes": ["Group", "Role", "Tenant"],
            "shape": _principal_shape(),
        }
    for resource in resource_types:
        entity_types[resource] = {
            "memberOfTypes": ["Tenant"],
            "shape": {
                "type": "Record",
                "attributes": {
                    "id": {"type": "String"},
                    "tenant": {"type": "Entity", "name": "Tenant"},
                },
            },
        }
    applies = {
        "principalTypes": principals,
        "resourceTypes": resource_types,
        "context": _context_shape(),
    }
    action_map = {a: {"appliesTo": applies} for a in sorted(set(actions)) if a != "*"}
    return {"": {"entityTypes": entity_types, "actions": action_map}}


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


def principal_entities(
    *,
    kind: str,
    name: str,
    tenant: str,
    groups: Sequence[str],
    roles: Iterable[str],
    inherits: Mapping[str, Sequence[str]],
) -> str:
    """JSON (without brackets) of the principal, its groups, its roles and its tenant."""
    principal_type = PRINCIPAL_TYPES[kind]
    held = sorted(roles)
    tenant_uid = _uid("Tenant", tenant)
    parents = [_uid("Group", g) for g in groups] + [_uid("Role", r) for r in held]
    entities: list[dict[str, Any]] = [
        {
            "uid": _uid(principal_type, name),
            "attrs": {"name": name, "tenant": {"__entity": tenant_uid}},
            "parents": [*parents, tenant_uid],
        },
        {"uid": tenant_uid, "attrs": {}, "parents": []},
    ]
    entities += [{"uid": _uid("Group", g), "attrs": {}, "parents": [tenant_uid]} for g in groups]
    entities += [
        {
            "uid": _uid("Role", r),
            "attrs": {},
            "parents": [_uid("Role", p) for p in inherits.get(r, ())],
        }
        for r in held
    ]
    return json.dumps(entities)[1:-1]


def resource_entity(resource: str, resource_id: str, tenant: str) -> str:
    """JSON (without brackets) of one resource instance of a tenant."""
    tenant_uid = _uid("Tenant", tenant)
    entity = {
        "uid": _uid(cedar_type(resource), resource_id),
        "attrs": {"id": resource_id, "tenant": {"__entity": tenant_uid}},
        "parents": [tenant_uid],
    }
    return json.dumps(entity)
