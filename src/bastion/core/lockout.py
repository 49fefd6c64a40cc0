"""Brute-force throttling arithmetic: failed attempts per key and escalating temporary locks.

An attempt is counted *before* the password is checked (and refunded on success), so that
concurrent guesses cannot all slip through before the first failure is recorded. Each lock
doubles the previous one up to a ceiling; with the defaults an account sees at most 5 failures
and then 1, 2, 4, … 60 minute locks, well under ASVS 2.2.1's 100 failed attempts an hour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bastion.core.credentials import ThrottleState

# After this long without a failure the escalation starts again from the first step.
ESCALATION_MEMORY = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    window: timedelta
    base_lockout: timedelta
    max_lockout: timedelta


def is_locked(state: ThrottleState, *, now: datetime) -> bool:
    return state.locked_until is not None and now < state.locked_until


def lock_duration(lockouts: int, policy: ThrottlePolicy) -> timedelta:
    """The length of lock number ``lockouts + 1``: base * 2^lockouts, at most the ceiling."""
    return min(policy.base_lockout * (1 << min(lockouts, 30)), policy.max_lockout)


def count_attempt(
    state: ThrottleState, policy: ThrottlePolicy, *, now: datetime
) -> tuple[ThrottleState, bool]:
    """Count one attempt under ``state``; (new state, whether the attempt may proceed).

    A locked key refuses the attempt and stays as it is. The attempt that reaches
    ``max_failures`` still proceeds, and locks the key for the next ones.
    """
    if is_locked(state, now=now):
        return state, False
    lockouts = state.lockouts
    if now - state.window_start >= ESCALATION_MEMORY:
        lockouts = 0
    if now - state.window_start >= policy.window:
        state = replace(state, failures=0, window_start=now, lockouts=lockouts)
    failures = state.failures + 1
    if failures >= policy.max_failures:
        until = now + lock_duration(lockouts, policy)
        counted = replace(
            state, failures=0, window_start=now, locked_until=until, lockouts=lockouts + 1
        )
    else:
        counted = replace(state, failures=failures)
    return replace(counted, forget_at=forget_time(counted, policy)), True


def forget_time(state: ThrottleState, policy: ThrottlePolicy) -> datetime:
    """When ``state`` starts to act as a new counter (failures 0, no lock, escalation from the
    first step): its window has passed, its lock has ended and, after a lock, the escalation
    memory has passed too. From then on the store may remove it, so that a password spray
    (a new name or address on every attempt) leaves behind only the counters still in force.

    Counted under the policy of the time: a window lengthened later does not bring back a
    counter already removed."""
    moment = state.window_start + policy.window
    if state.lockouts:
        moment = max(moment, state.window_start + ESCALATION_MEMORY)
    if state.locked_until is not None:
        moment = max(moment, state.locked_until)
    return moment


def refund_attempt(state: ThrottleState, *, clear: bool) -> ThrottleState:
    """After a success: ``clear`` resets the key entirely (the account that just proved itself);
    otherwise one counted attempt is given back (a client address). ``forget_at`` stays: a
    refund only brings the moment the counter acts as a new one nearer, never later."""
    if clear:
        return replace(state, failures=0, locked_until=None, lockouts=0)
    return replace(state, failures=max(0, state.failures - 1))
