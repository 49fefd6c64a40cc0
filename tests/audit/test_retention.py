"""Retention removes old events a checkpoint at a time: what remains verifies from its oldest
kept checkpoint, the chain goes on from the stored head, and the removal is itself audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bastion.services.audit.retention import PruneResult, RetentionJob, cutoff_before, prune
from bastion.services.audit.verify import verify_storage

from .conftest import Rig, make_rig


def report(rig: Rig):  # type: ignore[no-untyped-def]
    return verify_storage(rig.storage, signature_valid=rig.signer.verifier().valid, max_unsigned=10)


def test_prune_keeps_a_verifiable_trail(storage_url: str) -> None:
    rig = make_rig(storage_url, every=10)
    rig.fill(25)  # checkpoints at 1, 10, 20
    rig.clock.advance(days=400)
    rig.fill(5)  # seq 26-30, a checkpoint at 26 (the last one is stale)
    now = rig.clock.now()
    result = prune(rig.storage, cutoff=now - timedelta(days=365), now=now, tenant="acme")
    assert result.removed == 20 and result.anchor_seq == 20
    checked = report(rig)
    assert checked.ok, checked.reason
    assert checked.first_seq == 21  # anchored by the signed checkpoint at 20
    with rig.storage.transaction() as tx:
        last = list(tx.audit.iterate())[-1]
    assert last.action == "audit.retention" and last.details["removed"] == 20


def test_prune_never_removes_the_head(storage_url: str) -> None:
    rig = make_rig(storage_url, every=5)
    rig.fill(10)  # checkpoints at 1, 5, 10: the last one is the head
    rig.clock.advance(days=1000)
    now = rig.clock.now()
    prune(rig.storage, cutoff=now, now=now, tenant="acme")
    rig.fill(3)
    checked = report(rig)
    assert checked.ok, checked.reason
    assert checked.first_seq == 6


def test_prune_with_nothing_old_enough_does_nothing(storage_url: str) -> None:
    rig = make_rig(storage_url, every=5)
    rig.fill(12)
    now = rig.clock.now()
    result = prune(rig.storage, cutoff=now - timedelta(days=1), now=now, tenant="acme")
    assert result.removed == 0
    assert report(rig).first_seq == 1


def test_retention_job_runs_once_on_demand(sqlite_url: str) -> None:
    rig = make_rig(sqlite_url, every=5)
    rig.fill(11)
    rig.clock.advance(days=40)
    rig.fill(1)
    job = RetentionJob(rig.storage, retention=timedelta(days=30), clock=rig.clock, tenant="acme")
    assert job.run_once().removed == 10
    assert report(rig).ok


def test_a_retention_longer_than_the_calendar_keeps_everything(sqlite_url: str) -> None:
    rig = make_rig(sqlite_url, every=5)
    rig.fill(11)
    rig.clock.advance(days=40)
    longest = timedelta(days=999_999_999)  # the most a duration may say; now - it overflows
    job = RetentionJob(rig.storage, retention=longest, clock=rig.clock, tenant="acme")
    assert job.run_once() == PruneResult(0, None)
    assert cutoff_before(rig.clock.now(), longest) == datetime.min.replace(tzinfo=UTC)
    assert report(rig).first_seq == 1
