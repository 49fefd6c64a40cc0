"""Cedar policy sets: validation at load, hot reload on change and SIGHUP, last good set kept,
reloads serialized, policy names right beside templates, and the names policies reference."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from bastion.config import parse_config
from bastion.core.cedar_schema import cedar_type
from bastion.core.model import AuditQuery
from bastion.errors import PolicyError
from bastion.services.authz_checks import CheckQuery
from bastion.services.bootstrap import initialise
from bastion.services.policies import PolicyEngine
from bastion.wiring import Services, build_services
from tests.authz.golden import GoldenClock, when

FORBID_DELETE = '@id("no-delete")\nforbid(principal, action == Action::"delete", resource);\n'
FORBID_READ = '@id("no-read")\nforbid(principal, action == Action::"read", resource);\n'
PERMIT_READ = '@id("allow-read")\npermit(principal, action == Action::"read", resource);\n'
TEMPLATE = '@id("tmpl")\npermit(principal == ?principal, action, resource);\n'


def world(tmp_path: Path, policy: str, *, interval: str = "1h", extra: str = "") -> Services:
    """Services with ``policy`` in main.cedar (and ``extra``, when given, in extra.cedar)."""
    (tmp_path / "main.cedar").write_text(policy)
    files = [f"{tmp_path}/main.cedar"]
    if extra:
        (tmp_path / "extra.cedar").write_text(extra)
        files.append(f"{tmp_path}/extra.cedar")
    config = parse_config(
        f"storage:\n  url: sqlite:///{tmp_path}/b.db\n"
        f"security:\n  pepper: {'p' * 40}\n"
        f"  policies:\n    files: {files}\n    reloadInterval: {interval}\n"
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
    return decision(services, action)[0]


def decision(services: Services, action: str) -> tuple[str, list[str]]:
    query = CheckQuery(principal="admin@example.com", action=action, resource="patterns/x")
    found = services.authz.checks.check(query).decision
    return found.effect.value, list(found.reasons)


def engine_of(services: Services) -> PolicyEngine:
    engine = services.authz.policies
    assert engine is not None
    return engine


def names_in_force(services: Services) -> list[str]:
    state = engine_of(services).state
    assert state is not None
    return [p.name for p in state.names.values()]


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
    assert watcher.poll() is False
    assert effect(services, "delete") == "deny"  # the last good set is still in force
    (tmp_path / "main.cedar").write_text("")  # an emptied file is rejected too
    assert watcher.poll() is False
    assert watcher.poll() is False
    assert watcher.poll() is False  # once per content, not once per poll
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
    assert watcher.poll() is False  # read once: it may still be being written
    assert watcher.poll() is True  # read alike twice
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


def test_torn_policy_write_is_not_applied(tmp_path: Path) -> None:
    services = world(tmp_path, FORBID_DELETE)
    watcher = services.authz.watcher
    assert watcher is not None
    complete = PERMIT_READ + FORBID_DELETE
    # The watcher reads while the editor has written only the first policy: that prefix parses
    # and validates, and without the forbid that follows it.
    (tmp_path / "main.cedar").write_text(complete[: len(PERMIT_READ)])
    applied = watcher.poll()
    assert effect(services, "delete") == "deny"  # the forbid still holds
    assert applied is False
    (tmp_path / "main.cedar").write_text(complete)
    assert watcher.poll() is False
    assert effect(services, "delete") == "deny"
    assert watcher.poll() is True
    assert effect(services, "delete") == "deny"
    assert names_in_force(services) == ["allow-read", "no-delete"]
    assert reloads(services) == ["success"]


def test_files_that_change_back_after_a_skipped_reload_are_still_applied(tmp_path: Path) -> None:
    services = world(tmp_path, FORBID_DELETE)
    watcher, engine = services.authz.watcher, engine_of(services)
    assert watcher is not None
    (tmp_path / "main.cedar").write_text(FORBID_READ)
    expected = engine.digests()
    assert watcher.poll() is False
    (tmp_path / "main.cedar").write_text(FORBID_DELETE)  # changed between the watcher's reads
    assert engine.reload(trigger="file change", expect=expected) is False
    (tmp_path / "main.cedar").write_text(FORBID_READ)  # and back
    assert watcher.poll() is True
    assert effect(services, "read") == "deny"


def test_explicit_reload_applies_at_once(tmp_path: Path) -> None:
    services = world(tmp_path, FORBID_DELETE)
    watcher = services.authz.watcher
    assert watcher is not None
    (tmp_path / "main.cedar").write_text(FORBID_READ)
    assert watcher.poll(forced=True) is True  # SIGHUP
    assert effect(services, "read") == "deny"
    (tmp_path / "main.cedar").write_text(FORBID_DELETE)
    assert engine_of(services).reload(trigger="api") is True
    assert effect(services, "delete") == "deny"
    assert watcher.poll() is False  # the watcher sees nothing left to do
    assert watcher.poll() is False


def test_concurrent_reloads_leave_the_latest_files_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = world(tmp_path, PERMIT_READ)
    engine = engine_of(services)
    read, release = threading.Event(), threading.Event()
    validate: Callable[..., Any] = cedarpy.validate_policies

    def descheduled(*args: Any) -> Any:
        if threading.current_thread().name == "api-reload":
            read.set()  # the API reload has read the files as they were
            release.wait(5)
        return validate(*args)

    monkeypatch.setattr(cedarpy, "validate_policies", descheduled)
    (tmp_path / "main.cedar").write_text(FORBID_DELETE)
    api = threading.Thread(target=engine.reload, kwargs={"trigger": "api"}, name="api-reload")
    api.start()
    assert read.wait(5)
    (tmp_path / "main.cedar").write_text(FORBID_READ)
    watched = threading.Thread(target=engine.reload, kwargs={"trigger": "file change"})
    watched.start()
    watched.join(0.5)  # done by now unless it waits for the API reload
    release.set()
    api.join(5)
    watched.join(5)
    assert effect(services, "read") == "deny"  # what is on disk now
    assert effect(services, "delete") == "allow"


def test_reasons_name_the_right_policy_beside_a_template(tmp_path: Path) -> None:
    services = world(tmp_path, TEMPLATE + PERMIT_READ + FORBID_DELETE)
    assert "policy allow-read permits" in decision(services, "read")[1]
    assert "policy no-delete forbids" in decision(services, "delete")[1]


def test_reasons_name_the_right_policy_after_a_file_with_a_template(tmp_path: Path) -> None:
    services = world(tmp_path, TEMPLATE + PERMIT_READ, extra=FORBID_DELETE)
    assert "policy allow-read permits" in decision(services, "read")[1]
    assert "policy no-delete forbids" in decision(services, "delete")[1]
    assert names_in_force(services) == ["allow-read", "no-delete"]


NAMING = """
@id("by-group") permit(principal in Group::"Contractors", action, resource);
@id("by-user") permit(principal == User::"boss@example.com", action, resource);
@id("by-role") permit(principal is User in Role::"auditors", action, resource);
@id("in-when") permit(principal, action, resource)
  when { principal in [Group::"night-shift", Group::"late-shift"] || principal in Role::"oncall" };
@id("by-name") permit(principal, action == Action::"read", resource)
  when { principal.name like "contract*" || ["ci-bot"].contains(principal.name) };
@id("forbid-group") forbid(principal, action == Action::"delete", resource)
  when { principal in Group::"suspended" };
"""


@pytest.mark.parametrize(
    ("kind", "name", "policies"),
    [
        ("Group", "contractors", ("by-group",)),  # compared in canonical form
        ("User", "Boss@Example.com", ("by-user",)),
        ("Role", "auditors", ("by-role",)),
        ("Group", "night-shift", ("in-when",)),
        ("Group", "late-shift", ("in-when",)),
        ("Role", "oncall", ("in-when",)),
        ("ServiceAccount", "contractor-7", ("by-name",)),
        ("Agent", "ci-bot", ("by-name",)),
        ("Group", "suspended", ("forbid-group",)),
        ("Group", "ci-bot", ()),  # groups have no name attribute
        ("Group", "engineering", ()),
        ("User", "alice@example.com", ()),
    ],
)
def test_engine_names_what_its_policies_reference(
    tmp_path: Path, kind: str, name: str, policies: tuple[str, ...]
) -> None:
    services = world(tmp_path, NAMING)
    assert engine_of(services).naming(kind, name) == policies
