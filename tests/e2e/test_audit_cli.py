"""The audit trail end to end: requests through ``bastion serve`` are listed with every
filter, verified, exported in every format and verified offline; tampering with the database
makes ``bastion audit verify`` fail with the first broken seq."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit.secrets_registry import REGISTRY
from tests.e2e.audit_stack import AuditStack, audit_stack, request_id

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStack]:
    with audit_stack(tmp_path_factory.mktemp("audit-cli")) as running:
        REGISTRY.add(running.admin_key, running.limited_key)
        yield running


@pytest.fixture(scope="module")
def traffic(stack: AuditStack) -> dict[str, str]:
    """One request of each kind; the request id of each answer."""
    answers = {
        "allowed": stack.get("/api/patterns/content-classifier", key=stack.limited_key),
        "denied": stack.get("/api/patterns/p-2/execute", key=stack.limited_key, method="POST"),
        "unauthenticated": stack.get("/api/patterns"),
        "executed": stack.get(
            "/api/patterns/content-classifier/execute", key=stack.admin_key, method="POST"
        ),
    }
    assert [r.status_code for r in answers.values()] == [200, 403, 401, 201]
    ids = {name: request_id(response) for name, response in answers.items()}
    assert all(ids.values())
    return ids  # type: ignore[return-value]


def listed(stack: AuditStack, *filters: str) -> list[dict[str, object]]:
    out = stack.cli("audit", "list", "--json", "--limit", "1000", *filters).stdout
    return [json.loads(line) for line in out.splitlines()]


def request_ids(events: list[dict[str, object]]) -> set[str]:
    return {e["request"].get("requestId") for e in events}  # type: ignore[union-attr]


def test_list_filters_by_resource_outcome_tenant_action_actor(
    stack: AuditStack, traffic: dict[str, str]
) -> None:
    by_resource = listed(stack, "--resource", "patterns/p-2")
    assert request_ids(by_resource) == {traffic["denied"]}
    assert request_ids(listed(stack, "--outcome", "denied")) == {traffic["denied"]}
    failures = listed(stack, "--outcome", "failure", "--since", "1h")
    assert traffic["unauthenticated"] in request_ids(failures)
    executed = listed(stack, "--action", "pattern.execute", "--actor", "admin@example.com")
    assert traffic["executed"] in request_ids(executed)
    assert traffic["denied"] in request_ids(executed)
    assert listed(stack, "--tenant", "no-such-tenant") == []
    everything = listed(stack, "--tenant", "default")
    assert {traffic["allowed"], traffic["executed"]} <= request_ids(everything)


def test_database_verifies_and_status_reports_the_head(
    stack: AuditStack, traffic: dict[str, str]
) -> None:
    result = stack.cli("audit", "verify")
    assert result.stdout.startswith("ok: ") and "verify" in result.stdout
    status = json.loads(stack.cli("audit", "status", "--json").stdout)
    assert status["headSeq"] >= 8 and status["lastCheckpoint"]["keyId"]
    assert status["destinations"] == {}


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_export_verifies_offline_with_the_public_key(
    stack: AuditStack, traffic: dict[str, str], fmt: str
) -> None:
    exported = stack.workdir / f"export.{fmt}"
    stack.cli("audit", "export", "--since", "1d", "--format", fmt, "-o", str(exported))
    public = stack.workdir / "audit-public.pem"
    public.write_text(stack.cli("audit", "public-key").stdout)
    assert "PRIVATE" not in public.read_text()
    result = stack.cli("audit", "verify", "--export", str(exported), "--public-key", str(public))
    assert result.stdout.startswith("ok: ")


def test_export_formats_for_siems(stack: AuditStack, traffic: dict[str, str]) -> None:
    for fmt in ("csv", "syslog", "cef"):
        text = stack.cli("audit", "export", "--format", fmt).stdout
        assert traffic["denied"] in text
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            assert {r["requestId"] for r in rows} >= set(traffic.values())
        else:
            marker = "<" if fmt == "syslog" else "CEF:0|"
            assert all(line.startswith(marker) for line in text.splitlines())


def test_tampered_database_fails_verify_with_the_first_broken_seq(
    stack: AuditStack, traffic: dict[str, str]
) -> None:
    # Runs last in this module: it leaves the trail tampered.
    stack.stop()
    db = sqlite3.connect(stack.workdir / "bastion.db")
    with db:
        row = db.execute(
            "SELECT seq, body FROM audit_events WHERE body LIKE ?", (f"%{traffic['denied']}%",)
        ).fetchone()
        body = json.loads(row[1])
        body["outcome"] = "success"
        db.execute(
            "UPDATE audit_events SET body = ?, outcome = 'success' WHERE seq = ?",
            (json.dumps(body), row[0]),
        )
    db.close()
    result = stack.cli("audit", "verify", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: the audit trail does not verify: first broken seq {row[0]}: "
        f"event {row[0]} was changed: its content does not match its hash"
    )
    assert not Path(stack.workdir / "missing").exists()
