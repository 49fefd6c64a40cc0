"""GCRA maths: exactly the burst at one instant, refill at the rate, all-or-nothing charging."""

from __future__ import annotations

import pytest

from bastion.core.ratelimit import MICROS, Bucket, Quota, decide, gcra, summarise


def run(quota: Quota, times: list[int]) -> list[bool]:
    tat: int | None = None
    results = []
    for now in times:
        state = gcra(tat, now, quota)
        if state.allowed:
            tat = state.tat
        results.append(state.allowed)
    return results


@pytest.mark.parametrize("burst", [1, 2, 50, 1000])
def test_exactly_burst_requests_pass_at_one_instant(burst: int) -> None:
    quota = Quota("q", 0.001, burst)
    assert run(quota, [0] * (burst + 5)) == [True] * burst + [False] * 5


def test_one_request_per_interval_after_the_burst() -> None:
    quota = Quota("q", 10, 1)  # one every 100 ms
    times = [0, 50_000, 100_000, 150_000, 200_000]
    assert run(quota, times) == [True, False, True, False, True]


def test_idle_bucket_refills_only_to_the_burst() -> None:
    quota = Quota("q", 1, 3)
    later = 1_000 * MICROS
    assert run(quota, [0, 0, 0, later, later, later, later]) == [True] * 6 + [False]


def test_refused_request_reports_retry_after() -> None:
    quota = Quota("q", 2, 1)  # interval 500 ms
    first = gcra(None, 0, quota)
    refused = gcra(first.tat, 100_000, quota)
    assert not refused.allowed
    assert refused.retry_after == 400_000


def test_refusal_by_one_bucket_charges_none() -> None:
    roomy, tight = Quota("roomy", 0.001, 10), Quota("tight", 0.001, 1)
    buckets = [Bucket(roomy, "a"), Bucket(tight, "b")]
    first = decide([None, None], 0, buckets)
    assert all(s.allowed for s in first)
    second = decide([first[0].tat, first[1].tat], 0, buckets)
    assert [s.allowed for s in second] == [True, False]
    assert second[0].tat == first[0].tat  # the roomy bucket was not charged
    decision = summarise(second, buckets)
    assert (decision.allowed, decision.denied_by, decision.limit) == (False, "tight", 1)
    assert decision.retry_after >= 1


def test_summary_reports_the_bucket_with_least_room() -> None:
    buckets = [Bucket(Quota("a", 0.001, 10), "a"), Bucket(Quota("b", 0.001, 3), "b")]
    decision = summarise(decide([None, None], 0, buckets), buckets)
    assert (decision.allowed, decision.limit, decision.remaining) == (True, 3, 2)


def test_scaled_quota_shares_rate_and_burst() -> None:
    quota = Quota("q", 10, 50).scaled(2)
    assert (quota.rate, quota.burst) == (5, 25)
    assert Quota("q", 10, 1).scaled(4).burst == 1


def test_quota_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Quota("q", 0, 1)
    with pytest.raises(ValueError):
        Quota("q", 1, 0)
