"""The access decision: deny by default, RBAC ∩ scopes, and the reasons carried along."""

from __future__ import annotations

from bastion.errors import AuthenticationError, AuthorizationError, StorageError
from bastion.services.access import RequestFacts, Verdict
from bastion.services.request_events import request_event
from tests.services.conftest import ACTOR, World


def facts(method: str, path: str, credential: str | None) -> RequestFacts:
    return RequestFacts(method, path, credential, "127.0.0.1", "pytest", "req_1")


def test_scoped_key_allowed_only_within_scopes(world: World) -> None:
    limited = world.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="limited",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    )
    allowed = world.access.check(facts("GET", "/api/patterns", limited.secret))
    assert allowed.allowed
    assert allowed.identity is not None and allowed.identity.roles == ("admin",)
    denied = world.access.check(facts("POST", "/api/patterns/x/execute", limited.secret))
    assert isinstance(denied.error, AuthorizationError)
    assert "credential scopes do not include executions:create" in denied.reasons


def test_missing_credential_is_authentication_error(world: World) -> None:
    verdict = world.access.check(facts("GET", "/api/patterns", None))
    assert isinstance(verdict.error, AuthenticationError)
    assert verdict.error.reason == "missing_credential"


def test_unmatched_route_denied_for_admin(world: World) -> None:
    verdict = world.access.check(facts("GET", "/api/unknown", world.boot.admin_key.secret))
    assert isinstance(verdict.error, AuthorizationError)
    event = request_event(verdict, status=403, now=world.clock.now(), default_tenant="default")
    assert (event.action, event.outcome) == ("authz.deny", "denied")


def test_public_path_needs_no_credential(world: World) -> None:
    assert world.access.check(facts("GET", "/health", None)).allowed


def test_storage_failure_is_a_deny(world: World) -> None:
    def broken() -> None:
        raise StorageError("database down")

    world.storage.transaction = broken  # type: ignore[assignment,method-assign]
    world.storage.read_only = broken  # type: ignore[assignment,method-assign]
    verdict = world.access.check(facts("GET", "/api/patterns", world.boot.admin_key.secret))
    assert not verdict.allowed
    assert isinstance(verdict.error, StorageError)
    event = request_event(verdict, status=503, now=world.clock.now(), default_tenant="default")
    assert event.outcome == "failure"
    assert event.details["reason"] == "storage_unavailable"


def test_request_event_never_contains_the_credential(world: World) -> None:
    verdict: Verdict = world.access.check(
        facts("GET", "/api/patterns", world.boot.admin_key.secret)
    )
    event = request_event(verdict, status=200, now=world.clock.now(), default_tenant="default")
    assert world.boot.admin_key.secret not in repr(event)
    assert event.actor["id"] == "admin@example.com"
