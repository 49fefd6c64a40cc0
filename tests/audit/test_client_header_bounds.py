"""Header text a client chooses is recorded bounded: one request cannot make a huge event,
and under ``bastion serve`` a megabyte User-Agent neither stalls nor skips a destination."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from bastion.core.audit_formats import TRUNCATED_MARK
from bastion.services.access import RequestFacts, Verdict
from bastion.services.request_events import MAX_CLIENT_TEXT, request_event
from tests.e2e.audit_stack import audit_stack, request_id

from .conftest import T0
from .receivers import free_port, rsyslog, wait_for

API_KEY = "bk_live_" + "Q7" * 20


def event_for(user_agent: str | None) -> dict[str, object]:
    facts = RequestFacts("GET", "/x", None, "10.0.0.1", user_agent, "req_1")
    verdict = Verdict(facts, None, None, None, ("public",), public=True)
    return request_event(verdict, status=200, now=T0, default_tenant="default").actor


def test_oversized_user_agent_is_recorded_cut_and_marked() -> None:
    recorded = event_for("u" * 1_100_000)["userAgent"]
    assert isinstance(recorded, str) and len(recorded) == MAX_CLIENT_TEXT
    assert recorded == "u" * (MAX_CLIENT_TEXT - len(TRUNCATED_MARK)) + TRUNCATED_MARK


def test_ordinary_user_agent_is_recorded_as_sent() -> None:
    assert event_for("curl/8.5.0")["userAgent"] == "curl/8.5.0"
    assert event_for("a" * MAX_CLIENT_TEXT)["userAgent"] == "a" * MAX_CLIENT_TEXT
    assert event_for(None)["userAgent"] is None


def test_cut_user_agent_keeps_no_half_credential() -> None:
    """A key straddling the cut would no longer look like one to the masking that runs on
    the event later: the value is masked before it is cut."""
    user_agent = "x" * (MAX_CLIENT_TEXT - 30) + " " + API_KEY + " " + "y" * 1000
    recorded = str(event_for(user_agent)["userAgent"])
    assert "bk_live_" not in recorded and API_KEY[8:20] not in recorded
    assert len(recorded) <= MAX_CLIENT_TEXT


@pytest.mark.e2e
def test_unauthenticated_huge_user_agent_cannot_stall_delivery(tmp_path: Path) -> None:
    """The reviewer's attack: one unauthenticated request and one login attempt with a User-Agent
    as long as `bastion serve` takes (a head is at most 64 KiB: a 1.1 MB one is 431 before any
    event), then ordinary traffic. Every event still reaches the file and rsyslog over UDP."""
    udp = free_port(socket.SOCK_DGRAM)
    config = {
        "security": {
            "audit": {
                "destination": ["database", "file", "syslog"],
                "file": {"path": "audit.log"},
                "syslog": {"protocol": "udp", "host": "127.0.0.1", "port": udp},
            }
        }
    }
    with (
        rsyslog(tmp_path / "rsyslog", udp_port=udp) as receiver,
        audit_stack(tmp_path / "stack", config=config) as stack,
    ):
        refused = httpx.get(
            stack.base + "/api/patterns", headers={"User-Agent": "u" * 1_100_000}, timeout=30
        )
        assert refused.status_code == 431
        huge = httpx.get(
            stack.base + "/api/patterns", headers={"User-Agent": "u" * 64_000}, timeout=30
        )
        assert huge.status_code == 401
        login = httpx.post(
            stack.base + "/_bastion/login",
            json={"username": "nobody@example.com", "password": "not-the-password"},
            headers={"User-Agent": "v" * 64_000},
            timeout=30,
        )
        assert login.status_code == 401
        ids = [request_id(huge), request_id(login)]
        for n in range(10):
            answer = httpx.get(
                stack.base + "/api/patterns", headers={"User-Agent": f"curl/after-{n}"}
            )
            ids.append(request_id(answer))
        audit_file = stack.workdir / "audit.log"
        assert wait_for(lambda: all(str(i) in audit_file.read_text() for i in ids), seconds=30)
        assert wait_for(lambda: all(str(i) in receiver.text() for i in ids), seconds=30)
        status = json.loads(stack.cli("audit", "status", "--json").stdout)["destinations"]
        events = {e["request"].get("requestId"): e for e in stack.events()}
        assert request_id(refused) not in events
    counters = {n: (s["pending"], s["dropped"], s["failures"]) for n, s in status.items()}
    assert counters == {"file": (0, 0, 0), "syslog": (0, 0, 0)}
    for huge_one in ids[:2]:  # a proxied request and a login attempt
        recorded = events[huge_one]["actor"]["userAgent"]
        assert len(recorded) == MAX_CLIENT_TEXT and recorded.endswith(TRUNCATED_MARK)
