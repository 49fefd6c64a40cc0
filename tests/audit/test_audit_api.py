"""``GET /_bastion/api/v1/audit/events``: the same filters as ``bastion audit list``, cursor
pagination, ``audit:read`` required, scoped to the caller's tenant, and itself audited."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bastion.config import parse_config
from bastion.core.audit import MAX_SEQ
from bastion.gateway.api.audit import decode_cursor, encode_cursor
from bastion.gateway.app import build_app
from bastion.services.audit import append_events, build_event
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services
from tests.gateway.problem_checks import problem

from .secrets_registry import REGISTRY

API = "/_bastion/api/v1/audit/events"
ACTOR = {"type": "operator", "id": "tester"}


@pytest.fixture
def services(tmp_path: Path) -> Services:
    config = parse_config(
        f"storage:\n  url: sqlite:///{tmp_path}/b.db\nsecurity:\n  pepper: {'p' * 40}\n",
        source="test",
    )
    built = build_services(config)
    built.storage.migrate()
    return built


@pytest.fixture
def admin_key(services: Services) -> str:
    done = initialise(
        storage=services.storage,
        api_keys=services.api_keys,
        clock=services.clock,
        tenant_name="default",
        admin_name="admin@example.com",
        actor=ACTOR,
    )
    REGISTRY.add(done.admin_key.secret)
    now = services.clock.now()
    with services.storage.transaction() as tx:
        append_events(
            tx,
            [
                build_event(
                    action="pattern.execute" if n % 2 else "pattern.read",
                    outcome="denied" if n % 3 == 0 else "success",
                    tenant="other" if n == 7 else "default",
                    now=now,
                    actor={"type": "user", "id": f"user{n % 2}@example.com"},
                    resource={"type": "patterns", "id": f"p{n}"},
                )
                for n in range(12)
            ],
        )
    return done.admin_key.secret


@pytest.fixture
def client(services: Services, admin_key: str) -> Iterator[TestClient]:
    with TestClient(build_app(services.config, services=services)) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_filters_match_the_cli(client: TestClient, admin_key: str) -> None:
    params = {"action": "pattern.execute", "actor": "user1@example.com", "since": "1h"}
    events = client.get(API, params=params, headers=bearer(admin_key)).json()["events"]
    assert [e["resource"]["id"] for e in events] == ["p1", "p3", "p5", "p7", "p9", "p11"]
    denied = client.get(
        API, params={"outcome": "denied", "resource": "patterns/p9"}, headers=bearer(admin_key)
    ).json()["events"]
    assert [e["resource"]["id"] for e in denied] == ["p9"]
    assert set(events[0]) == {
        "timestamp",
        "eventId",
        "tenant",
        "action",
        "outcome",
        "actor",
        "resource",
        "details",
        "request",
        "seq",
        "prevHash",
        "hash",
    }


def test_cursor_pages_through_everything(client: TestClient, admin_key: str) -> None:
    seen, cursor = [], None
    for _ in range(20):  # bounded
        params = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        page = client.get(API, params=params, headers=bearer(admin_key)).json()
        seen += [e["seq"] for e in page["events"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 16


def test_platform_tenant_may_choose_a_tenant(client: TestClient, admin_key: str) -> None:
    other = client.get(API, params={"tenant": "other"}, headers=bearer(admin_key)).json()
    assert [e["resource"]["id"] for e in other["events"]] == ["p7"]


def test_reading_needs_audit_read(client: TestClient, services: Services, admin_key: str) -> None:
    limited = services.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="ro",
        scopes=["patterns:read"],
        expires_at=None,
        actor=ACTOR,
    ).secret
    REGISTRY.add(limited)
    denied = client.get(API, headers=bearer(limited))
    assert denied.status_code == 403
    assert client.get(API).status_code == 401


def test_reading_the_trail_is_itself_audited(client: TestClient, admin_key: str) -> None:
    client.get(API, params={"limit": "1"}, headers=bearer(admin_key))
    latest = client.get(API, params={"action": "audit.read"}, headers=bearer(admin_key)).json()
    assert latest["events"] and latest["events"][0]["actor"]["id"] == "admin@example.com"


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"until": "2026-01-01T00:00:00"},
        {"outcome": "denyed"},
    ],
)
def test_bad_parameters_are_400(client: TestClient, admin_key: str, params: dict[str, str]) -> None:
    answer = client.get(API, params=params, headers=bearer(admin_key))
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "999999999d"}, "since: is out of range (the years 1 to 9999, in UTC)"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since: is out of range"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "until: is out of range"),
        ({"since": "99999999999d"}, "since: is too large (at most 999999999d)"),
        ({"until": "2026-01-01"}, "until: must be a time with an offset (Z or +hh:mm)"),
        ({"since": "P1D"}, "since: must be a duration like 1h or 7d, or an RFC 3339 time"),
    ],
)
def test_moments_a_datetime_cannot_hold_are_400_naming_the_parameter(
    client: TestClient, admin_key: str, params: dict[str, str], detail: str
) -> None:
    body = problem(client.get(API, params=params, headers=bearer(admin_key)), 400, "bad_request")
    assert body["detail"].startswith(detail)


def test_the_first_and_last_moments_a_datetime_holds_are_answered(
    client: TestClient, admin_key: str
) -> None:
    params = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z", "limit": "1000"}
    every = client.get(API, params=params, headers=bearer(admin_key))
    assert every.status_code == 200, every.text
    assert len(every.json()["events"]) >= 12


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "YWZ0ZXI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk",  # after:99999999999999999999999999999
        cursor_of(f"after:{MAX_SEQ + 1}"),
        cursor_of("after:" + "9" * 5000),
        cursor_of("after:\uff11"),  # a full-width 1
        cursor_of("after:01"),
        cursor_of("after:-1"),
        cursor_of("after:+1"),
        cursor_of("after: 1"),
        cursor_of("after:1") + "==",
        cursor_of("before:1"),
    ],
)
def test_a_cursor_the_api_never_returned_is_400_not_a_storage_overflow(
    client: TestClient, admin_key: str, cursor: str
) -> None:
    answer = client.get(API, params={"cursor": cursor}, headers=bearer(admin_key))
    assert problem(answer, 400, "bad_request")["detail"] == "cursor: not a cursor this API returned"


def test_a_cursor_at_the_largest_seq_reads_an_empty_page(
    client: TestClient, admin_key: str
) -> None:
    answer = client.get(API, params={"cursor": encode_cursor(MAX_SEQ)}, headers=bearer(admin_key))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"events": [], "nextCursor": None}
    assert decode_cursor(encode_cursor(MAX_SEQ)) == MAX_SEQ
