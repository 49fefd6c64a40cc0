"""Brute force: escalating locks per account and per address, counters in the database,
and the same answer for unknown user, wrong password and locked account."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from bastion.core.credentials import ThrottleState
from bastion.core.lockout import ThrottlePolicy, count_attempt, lock_duration, refund_attempt
from bastion.core.model import AuditQuery
from bastion.crypto.passwords import PasswordHasher
from bastion.errors import AuthenticationError
from bastion.gateway.app import build_app
from bastion.services.login import LoginRequest
from tests.identity.conftest import PASSWORD, FrozenClock, World, make_world

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = ThrottlePolicy(5, timedelta(minutes=15), timedelta(minutes=1), timedelta(hours=1))


def test_locks_escalate_and_are_capped() -> None:
    assert [lock_duration(n, POLICY) for n in range(8)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60)
    ]


def test_fifth_failure_locks_and_a_locked_key_refuses_without_counting() -> None:
    state = ThrottleState("acct:x", 0, T0)
    for _ in range(5):
        state, allowed = count_attempt(state, POLICY, now=T0)
        assert allowed
    assert state.locked_until == T0 + timedelta(minutes=1)
    again, allowed = count_attempt(state, POLICY, now=T0 + timedelta(seconds=30))
    assert not allowed and again == state
    assert refund_attempt(state, clear=True).locked_until is None


def test_at_most_100_failures_an_hour_per_account() -> None:
    state, moment, allowed_count = ThrottleState("acct:x", 0, T0), T0, 0
    while moment < T0 + timedelta(hours=1):
        state, allowed = count_attempt(state, POLICY, now=moment)
        allowed_count += allowed
        moment += timedelta(seconds=1)
    assert allowed_count <= 100


def attempt(world: World, username: str, password: str, ip: str = "10.0.0.1") -> str:
    try:
        world.identity.logins.login(LoginRequest("default", username, password, ip, None))
    except AuthenticationError as exc:
        return exc.reason
    return "ok"


def test_the_audit_log_records_the_true_reason(world: World) -> None:
    world.user("jo@example.com")
    assert attempt(world, "nobody@example.com", "x") == "unknown_user"
    assert attempt(world, "jo@example.com", "wrong") == "wrong_password"
    for _ in range(4):
        attempt(world, "jo@example.com", "wrong")
    assert attempt(world, "jo@example.com", PASSWORD) == "locked_account"
    world.clock.advance(minutes=1)
    assert attempt(world, "jo@example.com", PASSWORD) == "ok"
    with world.services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action="login.failure", limit=100))
    reasons = [e.details["reason"] for e in events]
    assert reasons[:2] == ["unknown_user", "wrong_password"] and reasons[-1] == "locked_account"
    assert all(PASSWORD not in repr(e) for e in events)


def test_address_lock_applies_across_accounts(world: World) -> None:
    for n in range(50):
        attempt(world, f"spray{n}@example.com", "guess", ip="203.0.113.9")
    world.user("kim@example.com")
    assert attempt(world, "kim@example.com", PASSWORD, ip="203.0.113.9") == "locked_address"
    assert attempt(world, "kim@example.com", PASSWORD, ip="203.0.113.10") == "ok"


def test_200_guesses_with_spoofed_forwarded_for_still_lock_the_account(tmp_path: Path) -> None:
    world = make_world(f"sqlite:///{tmp_path}/b.db")
    world.user("leo@example.com")
    with TestClient(build_app(world.services.config, services=world.services)) as client:
        statuses = {
            client.post(
                "/_bastion/login",
                json={"username": "leo@example.com", "password": f"guess-{n}"},
                headers={"X-Forwarded-For": f"198.51.100.{n % 250}"},
            ).status_code
            for n in range(200)
        }
        assert statuses == {401}
        right = client.post(
            "/_bastion/login", json={"username": "leo@example.com", "password": PASSWORD}
        )
    assert right.status_code == 401  # locked, whatever the address claimed
    with world.services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(action="login.failure", limit=1000))
    assert sum(e.details["reason"] == "wrong_password" for e in events) <= 100
    assert events[-1].details["reason"] == "locked_account"


def test_lock_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    clock = FrozenClock()
    first = make_world(url, clock=clock)
    first.user("max@example.com")
    for _ in range(5):
        attempt(first, "max@example.com", "wrong")
    first.services.storage.close()
    restarted = make_world(url, clock=clock)  # a new process on the same database
    assert attempt(restarted, "max@example.com", PASSWORD) == "locked_account"


def test_unknown_wrong_and_locked_are_byte_identical(tmp_path: Path) -> None:
    world = make_world(f"sqlite:///{tmp_path}/b.db")
    world.user("nia@example.com")
    world.user("ola@example.com")
    with TestClient(build_app(world.services.config, services=world.services)) as client:

        def post(username: str, password: str) -> tuple[int, bytes, list[tuple[str, str]]]:
            response = client.post(
                "/_bastion/login", json={"username": username, "password": password}
            )
            headers = sorted(
                (k, v) for k, v in response.headers.items() if k not in ("date", "content-length")
            )
            return response.status_code, response.content, headers

        unknown = post("ghost@example.com", "whatever-1A!")
        wrong = post("nia@example.com", "whatever-1A!")
        for _ in range(5):
            post("ola@example.com", "nope")
        locked = post("ola@example.com", PASSWORD)
    assert unknown == wrong == locked
    assert unknown[0] == 401


class CountingHasher(PasswordHasher):
    """The cheap test hasher, counting Argon2 verifications and the pauses that stand in."""

    def __init__(self) -> None:
        self.verifications = 0
        self.pauses: list[float] = []
        super().__init__(memory_kib=256, time_cost=1)
        self.verifications = 0  # not the one that measures a verification's time

    def verify(self, stored: str, password: str) -> bool:
        self.verifications += 1
        return super().verify(stored, password)

    def verify_dummy(self, password: str) -> None:
        self.verifications += 1
        super().verify_dummy(password)

    def pause_as_verify(self, sleep: Callable[[float], None] = time.sleep) -> None:
        super().pause_as_verify(self.pauses.append)


def test_a_storm_against_a_locked_account_costs_no_hash_work_but_the_same_wait(
    world: World,
) -> None:
    world.user("lee@example.com")
    hasher = CountingHasher()
    world.identity.passwords.hasher = hasher
    for _ in range(5):
        assert attempt(world, "lee@example.com", "wrong") == "wrong_password"
    assert hasher.verifications == 5
    for _ in range(20):
        assert attempt(world, "lee@example.com", "wrong") == "locked_account"
    # No Argon2 work for the refusals, each a wait as long as a verification takes.
    assert hasher.verifications == 5
    assert len(hasher.pauses) == 20
    assert all(p == hasher.typical_verify_seconds > 0 for p in hasher.pauses)
    # An unknown or disabled account still does the work a real one would.
    assert attempt(world, "nobody@example.com", "wrong") == "unknown_user"
    assert hasher.verifications == 6


def test_a_locked_address_refusal_also_waits_instead_of_hashing(world: World) -> None:
    hasher = CountingHasher()
    world.identity.passwords.hasher = hasher
    reasons = [
        attempt(world, f"spray{n}@example.com", "guess", ip="203.0.113.7") for n in range(60)
    ]
    locked = reasons.count("locked_address")
    assert locked > 0 and reasons[-1] == "locked_address"
    assert len(hasher.pauses) == locked and hasher.verifications == 60 - locked


def test_the_pause_follows_the_recent_verification_time() -> None:
    hasher = PasswordHasher(memory_kib=256, time_cost=1)
    first = hasher.typical_verify_seconds
    assert first > 0
    slow = PasswordHasher(memory_kib=8 * 1024, time_cost=3)
    assert slow.typical_verify_seconds > first
    stored = slow.hash(PASSWORD)
    for _ in range(5):
        slow.verify(stored, PASSWORD + "x")
    waited: list[float] = []
    slow.pause_as_verify(waited.append)
    assert waited == [slow.typical_verify_seconds]
