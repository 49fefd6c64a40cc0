"""The line formats of `bastion.core.audit_formats` for events with missing fields."""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.core.audit_formats import cef_line
from bastion.core.model import AuditEvent


def _event(request: dict[str, str]) -> AuditEvent:
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    return AuditEvent(
        event_id="evt_1",
        timestamp=moment,
        tenant="default",
        action="user.create",
        outcome="success",
        actor={"id": "operator"},
        resource={"type": "user", "id": "bob"},
        request=request,
        seq=7,
        hash="ab" * 32,
    )


def test_cef_leaves_out_a_label_whose_value_is_empty() -> None:
    line = cef_line(_event({}), version="1.0")
    assert "cs5Label" not in line and "cs5=" not in line
    assert "cs1Label=tenant cs1=default" in line and "cn1Label=seq cn1=7" in line


def test_cef_keeps_a_label_with_its_value() -> None:
    line = cef_line(_event({"requestId": "req_9"}), version="1.0")
    assert "cs5Label=requestId cs5=req_9" in line
