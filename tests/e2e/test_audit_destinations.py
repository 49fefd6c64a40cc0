"""Destinations under ``bastion serve``: events reach a real rsyslog and the audit file; while
the syslog receiver is down requests still succeed (the database record is never blocked),
the failure shows in ``bastion audit status`` and in the metrics, and the backlog is
delivered from the spool once the receiver is back."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.audit.receivers import free_port, rsyslog, wait_for
from tests.e2e.audit_stack import AuditStack, audit_stack, request_id

pytestmark = pytest.mark.e2e


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def syslog_state(stack: AuditStack) -> dict[str, object]:
    status = json.loads(stack.cli("audit", "status", "--json").stdout)
    return status["destinations"]["syslog"]  # type: ignore[no-any-return]


def test_destinations_deliver_and_a_dead_one_never_blocks(tmp_path: Path) -> None:
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
    config = {
        "security": {
            "audit": {
                "destination": ["database", "syslog", "file"],
                "syslog": {"protocol": "tcp", "host": "127.0.0.1", "port": tcp},
                "file": {"path": "audit/audit.log", "rotation": {"maxSize": "1MB"}},
            }
        }
    }
    with audit_stack(tmp_path / "stack", config=config) as stack:
        audit_file = stack.workdir / "audit" / "audit.log"
        with rsyslog(tmp_path / "rsyslog-1", udp_port=udp, tcp_port=tcp) as receiver:
            first = [request_id(stack.get("/api/patterns", key=stack.admin_key)) for _ in "12345"]
            assert wait_for(lambda: all(i in receiver.text() for i in first))
            assert wait_for(lambda: first[-1] in _text(audit_file))

        # The receiver is gone: requests still succeed, and the failure is visible.
        later = [stack.get("/api/patterns", key=stack.admin_key) for _ in "12345"]
        assert [r.status_code for r in later] == [200] * 5
        later_ids = [request_id(r) for r in later]
        assert wait_for(
            lambda: (
                bool(syslog_state(stack)["failuresInARow"]) and bool(syslog_state(stack)["pending"])
            ),
            seconds=30,
        )
        text = stack.cli("audit", "status").stdout
        assert "destination syslog: FAILING" in text and "destination file: ok" in text
        metrics = httpx.get(stack.base + "/_bastion/metrics", timeout=10).text
        assert 'bastion_audit_destination_failing{destination="syslog"} 1.0' in metrics
        assert wait_for(lambda: all(i in _text(audit_file) for i in later_ids))

        # Back on the same port: the backlog is delivered from the spool.
        with rsyslog(tmp_path / "rsyslog-2", udp_port=udp, tcp_port=tcp) as again:
            assert wait_for(
                lambda: (
                    again.received.exists()
                    and all(i in again.received.read_text() for i in later_ids)
                ),
                seconds=90,
            )
        assert wait_for(lambda: syslog_state(stack)["pending"] == 0)
        assert syslog_state(stack)["failuresInARow"] == 0
