"""Refresh tokens (``brt_…``) are credentials to the masking layer, like ``bk_live_`` keys and
``bat_`` tokens: wherever one hides in an event, it never reaches the audit trail."""

from __future__ import annotations

import pytest

from bastion.core.audit import event_to_json
from bastion.core.masking import REDACTED, has_credential_like, mask_value
from bastion.core.model import AuditQuery
from bastion.errors import AuthenticationError
from bastion.services.directory import record
from tests.identity.conftest import ACTOR, World
from tests.identity.test_tokens import session_for


def test_issued_refresh_tokens_never_reach_the_audit_trail(sql_world: World) -> None:
    world = sql_world
    tokens = world.identity.tokens
    first = session_for(world.services, world.user("rita@example.com"), world.tenant).refresh_token
    assert first is not None and first.startswith("brt_")
    second = tokens.refresh(first, scope=None).refresh_token
    assert second is not None
    with pytest.raises(AuthenticationError):
        tokens.refresh(first, scope=None)  # a replay: audited, with the token's family revoked

    assert has_credential_like(first) and has_credential_like(f"x={second}&y=1")
    assert mask_value({"note": f"callback?refresh={first}"})["note"] == (
        f"callback?refresh={REDACTED}"
    )
    with world.services.storage.transaction() as tx:
        record(
            tx,
            action="test.note",
            tenant=world.tenant.name,
            now=world.clock.now(),
            actor=ACTOR,
            resource={"type": "user", "id": "rita@example.com"},
            details={"note": f"pasted {second} into a ticket", "list": [first]},
        )
    with world.services.storage.transaction() as tx:
        trail = repr([event_to_json(e) for e in tx.audit.query(AuditQuery(limit=10_000))])
    assert "token.refresh" in trail and "test.note" in trail
    assert first not in trail and second not in trail
    assert "brt_" not in trail
