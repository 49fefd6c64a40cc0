"""``security.audit.required: true``: when the audit trail cannot be written, every request is
refused with 503 and none is answered 2xx; once it can again, requests flow and the trail
verifies. With ``required: false`` requests proceed and the loss is logged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.audit.refusals import refused_by_the_database
from tests.e2e.audit_stack import AuditStack, audit_stack, request_id

pytestmark = pytest.mark.e2e


@contextmanager
def unwritable_audit(stack: AuditStack, storage_url: str | None) -> Iterator[None]:
    """Make inserts into audit_events fail (as a full disk or a revoked grant would)."""
    with refused_by_the_database(storage_url or f"sqlite:///{stack.workdir}/bastion.db", "1 = 1"):
        yield


def mixed_requests(stack: AuditStack) -> list[tuple[int, str | None]]:
    answers = []
    for n in range(10):
        for response in (
            stack.get("/api/patterns", key=stack.admin_key),
            stack.get("/api/patterns/content-classifier", key=stack.limited_key),
            stack.get("/api/patterns/x/execute", key=stack.limited_key, method="POST"),
            stack.get(f"/api/patterns?n={n}"),
            stack.get("/_bastion/api/v1/whoami", key=stack.admin_key),  # an admin API read
            stack.get("/_bastion/api/v1/users/ghost@example.com", key=stack.admin_key),
        ):
            answers.append((response.status_code, request_id(response)))
    return answers


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_unwritable_audit_means_503_and_no_2xx(tmp_path: Path, storage_url: str | None) -> None:
    with audit_stack(tmp_path, storage_url=storage_url) as stack:
        assert stack.get("/api/patterns", key=stack.admin_key).status_code == 200
        with unwritable_audit(stack, storage_url):
            refused = mixed_requests(stack)
            problem = stack.get("/api/patterns", key=stack.admin_key).json()
        assert {status for status, _ in refused} == {503}
        assert (problem["status"], problem["code"]) == (503, "audit_unavailable")
        after = mixed_requests(stack)
        assert {status for status, _ in after} == {200, 403, 401, 404}
        logged = {e["request"].get("requestId") for e in stack.events()}  # type: ignore[union-attr]
        assert {rid for _, rid in after} <= logged
        assert not {rid for _, rid in refused} & logged
        assert stack.cli("audit", "verify").stdout.startswith("ok: ")


def test_not_required_lets_requests_through_and_logs_the_loss(tmp_path: Path) -> None:
    config = {"security": {"audit": {"required": False}}}
    with audit_stack(tmp_path, config=config) as stack:
        with unwritable_audit(stack, None):
            answers = mixed_requests(stack)
        assert {status for status, _ in answers} == {200, 403, 401, 404}
        logged = {e["request"].get("requestId") for e in stack.events()}  # type: ignore[union-attr]
        assert not {rid for _, rid in answers} & logged
        log = (stack.workdir / "bastion-1.log").read_text()
        assert "security.audit.required is false" in log
