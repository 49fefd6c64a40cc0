"""`bastion init`'s first events name their resources as every later change does."""

from __future__ import annotations

from bastion.core.model import AuditQuery
from tests.identity.conftest import World


def test_the_first_tenant_is_audited_by_name_like_any_other_tenant(world: World) -> None:
    world.identity.directory.create_tenant(name="acme", display_name="", actor={"id": "op"})
    with world.services.storage.transaction() as tx:
        created = tx.audit.query(AuditQuery(action="tenant.create", limit=10))
    assert [e.resource for e in created] == [
        {"type": "tenant", "id": "default"},
        {"type": "tenant", "id": "acme"},
    ]
