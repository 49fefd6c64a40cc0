"""Cedar policy sets: validation at load, hot reload on change and SIGHUP, last good set kept."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from bastion.config import parse_config
from bastion.core.cedar_schema import cedar_type
from bastion.core.model import AuditQuery
from bastion.errors import PolicyError
from bastion.services.authz_checks import CheckQuery
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services
from tests.authz.golden import GoldenClock, when

FORBID_DELETE = '@id("no-delete")\nforbid(principal, action == Action::"delete", resource);\n'
FORBID_READ = '@id("no-read")\nforbid(principal, action == Action::"read", resource);\n'


def world(tmp_path: Path, policy: str, *, interval: str = "1h") -> Services:
    (tmp_path / "main.cedar").write_text(policy)
    config = parse_config(
        f"storage:\n  url: sqlite:///{tmp_path}/b.db\n"
        f"security:\n  pepper: {'p' * 40}\n"
        f"  policies:\n    files: ['{tmp_path}/main.cedar']\n    reloadInterval: {interval}\n"
        "gateway:\n  routes:\n"
        "    - {method: GET, path: /p, resource: patterns, action: read}\n",
        source="test",
        environ={},
    )
    services = build_services(config, clock=GoldenClock(when("2026-01-01T12:00:00Z")))
    services.storage.migrate()
    initialise(
        storage=services.storage,
        api_keys=services.api_keys,
        clock=services.clock,
        tenant_name="default",
        admin_name="admin@example.com",
        actor={"type": "operator", "id": "t"},
    )
    return services


def effect(services: Services, action: str) -> str:
    query = CheckQuery(principal="admin@example.com", action=action, resource="patterns/x")
    return services.authz.checks.check(query).decision.effect.value


def reloads(services: Services) -> list[str]:
    with services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action="policy.reload", limit=100))
    return [e.outcome for e in events]


def test_cedar_types_are_identifiers() -> None:
    assert cedar_type("patterns") == "patterns"
    assert cedar_type("audit-log") == "audit_log"
    assert cedar_type("User") == "R_User"
    assert cedar_type("9lives") == "R_9lives"


def test_policy_that_does_not_validate_refuses_start(tmp_path: Path) -> None:
    bad = 'permit(principal, action, resource) when { principal.department == "x" };'
    with pytest.raises(PolicyError, match="do not validate"):
        world(tmp_path, bad)


def test_unknown_entity_type_refuses_start(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        world(tmp_path, "permit(principal, action, resource is Nowhere);")


def test_empty_policy_file_never_means_allow_all(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="holds no policy"):
        world(tmp_path, "// nothing here\n")


def test_bad_reload_keeps_the_last_good_set_and_is_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    services = world(tmp_path, FORBID_DELETE)
    watcher = services.authz.watcher
    assert watcher is not None
    assert effect(services, "delete") == "deny"
    (tmp_path / "main.cedar").write_text("forbid(principal, action, resource")  # truncated
    assert watcher.poll() is False
    assert effect(services, "delete") == "deny"  # the last good set is still in force
    (tmp_path / "main.cedar").write_text("")  # an emptied file is rejected too
    assert watcher.poll() is False
    assert effect(services, "delete") == "deny"
    assert effect(services, "read") == "allow"
    assert reloads(services) == ["failure", "failure"]
    assert "last good set stays" in caplog.text
    assert services.authz.policies is not None
    assert "holds no policy" in (services.authz.policies.last_error or "")


def test_changed_file_is_reloaded_without_restart(tmp_path: Path) -> None:
    services = world(tmp_path, FORBID_DELETE)
    watcher = services.authz.watcher
    assert watcher is not None
    (tmp_path / "main.cedar").write_text(FORBID_READ)
    assert watcher.poll() is True
    assert effect(services, "delete") == "allow"
    assert effect(services, "read") == "deny"
    assert reloads(services) == ["success"]


def test_sighup_reloads(tmp_path: Path) -> None:
    services = world(tmp_path, FORBID_DELETE)
    engine = services.authz.policies
    assert engine is not None and engine.state is not None
    first = engine.state
    previous = signal.getsignal(signal.SIGHUP)
    try:
        services.authz.start()
        (tmp_path / "main.cedar").write_text(FORBID_READ)
        os.kill(os.getpid(), signal.SIGHUP)
        done = threading.Event()
        for _ in range(200):
            if engine.state is not first:
                done.set()
                break
            threading.Event().wait(0.05)
        assert done.is_set(), "the policy set was not reloaded after SIGHUP"
        assert effect(services, "read") == "deny"
    finally:
        services.authz.close()
        signal.signal(signal.SIGHUP, previous)
