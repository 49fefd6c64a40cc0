"""Which API key a person means, and the names keys take: by id, display prefix, name or the
whole key (`find_key`); the default owner of a new key (`first_admin`); the rules of a key's
name (`check_key_name`); and the name a rotation gives the key it replaces (`retired_name`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bastion.backends.protocols import UnitOfWork
from bastion.core.apikeys import API_KEY_PREFIX, DISPLAY_PREFIX_LENGTH, display_prefix
from bastion.core.model import ApiKey, Principal, SubjectType, Tenant
from bastion.errors import NotFoundError, RequestRejectedError
from bastion.services.changes import plain_name


def first_admin(tx: UnitOfWork, tenant: Tenant) -> Principal:
    """The oldest user bound to ``admin`` in the tenant: the default owner of new keys."""
    admins = [
        b
        for b in tx.bindings.list(tenant.id)
        if b.role == "admin" and b.subject_type is SubjectType.USER
    ]
    for binding in sorted(admins, key=lambda b: b.created_at):
        try:
            return tx.principals.get_by_name(tenant.id, binding.subject_name)
        except NotFoundError:
            continue
    raise NotFoundError(f"tenant {tenant.name!r} has no admin user; pass --owner")


_KEY_ID = re.compile(r"key_[0-9a-f]{32}")


def find_key(
    tx: UnitOfWork, tenant: Tenant, reference: str, *, digest: Callable[[str], bytes]
) -> ApiKey:
    """The one key named by id, else display prefix, else name in the tenant. The id comes
    first, so no key can be named so as to make another one impossible to name.

    A whole key (a leaked one, pasted as it was found) is looked up by its keyed hash
    (``digest``) and never repeated in an error: only its display prefix is."""
    if reference.startswith(API_KEY_PREFIX) and len(reference) > DISPLAY_PREFIX_LENGTH:
        found = tx.api_keys.find_by_hash(digest(reference))
        if found is not None and found.tenant_id == tenant.id:
            return found
        shown = display_prefix(reference)
        raise NotFoundError(f"no API key {shown}… in tenant {tenant.name!r}")
    keys = tx.api_keys.referenced(tenant.id, reference)
    for field in ("id", "prefix", "name"):
        matches = [k for k in keys if getattr(k, field) == reference]
        if len(matches) > 1:
            raise RequestRejectedError(f"{reference!r} names several keys; use the key id")
        if matches:
            return matches[0]
    raise NotFoundError(f"no API key {reference!r} in tenant {tenant.name!r}")


def retired_name(key: ApiKey) -> str:
    """The name a key takes when a rotation replaces it (``ci~1a2b3c4d``): its replacement
    takes its name, and the tail of its own id, which nobody knows when naming a key, marks
    it as replaced."""
    return f"{key.name}~{key.id[-8:]}"


def is_replaced(key: ApiKey) -> bool:
    return key.name.endswith(f"~{key.id[-8:]}")


def replaced_name(key: ApiKey) -> str:
    """The name of the key that replaced ``key`` (``ci`` for ``ci~1a2b3c4d``)."""
    return key.name.removesuffix(f"~{key.id[-8:]}")


def check_key_name(name: str) -> str:
    """The name stripped; refused if it breaks the rules of every name (`plain_name`) or reads
    as a key id or a key itself."""
    name = name.strip()
    if not name:
        raise RequestRejectedError("a key needs a name")
    plain_name(name, "key")
    if _KEY_ID.fullmatch(name) or name.startswith(API_KEY_PREFIX):
        # Not echoed: it may be a real key pasted in the wrong place.
        raise RequestRejectedError("a key name cannot look like a key id or an API key")
    return name
