"""Brute force: escalating locks per account and per address, counters in the database,
and the same answer for unknown user, wrong password and locked account."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bastion.core.credentials import ThrottleState
from bastion.core.lockout import (
    ESCALATION_MEMORY,
    ThrottlePolicy,
    count_attempt,
    lock_duration,
    refund_attempt,
)
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


# Seconds between one step and the next (0: the same moment), and what happens then: a failed
# attempt is counted, or a success refunds it (as for an account, or as for an address).
_STEP = st.tuples(
    st.sampled_from([0, 0, 0, 1, 30, 90, 900, 3600, 75_600, 86_400, 90_000]),
    st.sampled_from(["count"] * 6 + ["refund_account", "refund_address"]),
)


# Locks that outlast the escalation memory (3 days at most, from 20 hours).
LONG_LOCKS = ThrottlePolicy(3, timedelta(hours=1), timedelta(hours=20), timedelta(days=3))


def _run(
    state: ThrottleState | None,
    steps: list[tuple[int, str]],
    start: datetime,
    policy: ThrottlePolicy,
) -> list[bool]:
    """Which attempts ``steps`` admit under ``state`` (None: no counter, so the first
    attempt makes a new one, as `ThrottleStore.lock` does)."""
    moment, allowed = start, []
    for pause, action in steps:
        moment += timedelta(seconds=pause)
        if action == "count":
            state = state or ThrottleState("acct:x", 0, moment, forget_at=moment)
            state, ok = count_attempt(state, policy, now=moment)
            allowed.append(ok)
        elif allowed and allowed[-1]:  # a success follows an attempt admitted here
            assert state is not None
            state = refund_attempt(state, clear=action == "refund_account")
    return allowed


@settings(max_examples=1000, deadline=None)
@given(
    policy=st.sampled_from([POLICY, LONG_LOCKS]),
    history=st.lists(_STEP, max_size=40),
    later=st.sampled_from([0, 1, 600, 86_400]),
    future=st.lists(_STEP, min_size=1, max_size=40),
)
def test_a_counter_past_its_forget_time_acts_as_a_new_one(
    policy: ThrottlePolicy,
    history: list[tuple[int, str]],
    later: int,
    future: list[tuple[int, str]],
) -> None:
    """What lets logins remove counters: from ``forget_at`` on, whatever comes next is
    admitted or refused exactly as if the counter were gone (same locks, same escalation)."""
    state, moment = ThrottleState("acct:x", 0, T0), T0
    for pause, action in history:
        moment += timedelta(seconds=pause)
        if action == "count":
            state, _ = count_attempt(state, policy, now=moment)
        else:
            state = refund_attempt(state, clear=action == "refund_account")
    if state.forget_at is None:
        return  # never counted: nothing to forget
    start = max(moment, state.forget_at) + timedelta(seconds=later)
    assert _run(state, future, start, policy) == _run(None, future, start, policy)


def test_a_locked_or_escalated_counter_is_kept_until_it_would_act_as_new() -> None:
    state = ThrottleState("acct:x", 0, T0)
    state, _ = count_attempt(state, POLICY, now=T0)
    assert state.forget_at == T0 + POLICY.window  # one failure: forgotten with its window
    for _ in range(4):
        state, _ = count_attempt(state, POLICY, now=T0)
    assert state.locked_until == T0 + timedelta(minutes=1)
    # Locked once: the next lock would be longer until the escalation memory has passed.
    assert state.forget_at == T0 + ESCALATION_MEMORY


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


def test_a_password_spray_leaves_no_more_counters_than_are_in_force(tmp_path: Path) -> None:
    """A new name from a new address on every attempt adds two counters each time. Counters
    that act as new ones are removed by later attempts, so the table stays at what is in
    force; a locked account's counter is kept, and its next lock is the longer one."""
    database = tmp_path / "b.db"
    world = make_world(f"sqlite:///{database}")
    world.user("ivy@example.com")
    for _ in range(5):
        attempt(world, "ivy@example.com", "wrong", ip="10.9.9.9")

    def spray(wave: int) -> None:
        for n in range(150):
            reason = attempt(world, f"w{wave}-{n}@example.com", "guess", ip=f"10.{wave}.0.{n}")
            assert reason == "unknown_user"

    def counters() -> int:
        with sqlite3.connect(database) as conn:
            return int(conn.execute("SELECT count(*) FROM login_throttles").fetchone()[0])

    spray(1)
    assert counters() == 2 + 300
    world.clock.advance(minutes=16)  # past the 15-minute window of the first wave
    spray(2)
    # The first wave's 300 forgotten, and the counter of ivy's address (5 failures, no lock,
    # its window over); ivy's account counter is kept: it remembers the lock.
    assert counters() == 1 + 300
    for _ in range(5):
        attempt(world, "ivy@example.com", "wrong", ip="10.9.9.9")
    assert attempt(world, "ivy@example.com", PASSWORD, ip="10.9.9.8") == "locked_account"
    world.clock.advance(minutes=1, seconds=30)  # the first lock was 1 minute, this one is 2
    assert attempt(world, "ivy@example.com", PASSWORD, ip="10.9.9.8") == "locked_account"
    world.services.identity.close()


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
        ids: list[str] = []

        def post(username: str, password: str) -> tuple[int, bytes, list[tuple[str, str]]]:
            """The answer with its request id taken out: the one part meant to differ."""
            response = client.post(
                "/_bastion/login", json={"username": username, "password": password}
            )
            request_id = response.headers["x-bastion-request-id"]
            assert response.json()["requestId"] == request_id
            ids.append(request_id)
            headers = sorted(
                (k, v)
                for k, v in response.headers.items()
                if k not in ("date", "content-length", "x-bastion-request-id")
            )
            content = response.content.replace(request_id.encode(), b"")
            assert len(content) == len(response.content) - len(request_id)
            return response.status_code, content, headers

        unknown = post("ghost@example.com", "whatever-1A!")
        wrong = post("nia@example.com", "whatever-1A!")
        for _ in range(5):
            post("ola@example.com", "nope")
        locked = post("ola@example.com", PASSWORD)
    assert unknown == wrong == locked
    assert unknown[0] == 401
    assert len(set(ids)) == len(ids)  # a fresh id each time, whatever the cause


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
