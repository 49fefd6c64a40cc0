"""Retention removes old events a checkpoint at a time: what remains verifies from its oldest
kept checkpoint, the chain goes on from the stored head, and each removal is itself audited,
signed, in the transaction that removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.core.masking import FieldMasker
from bastion.services.audit import retention
from bastion.services.audit.retention import PruneResult, RetentionJob, cutoff_before, prune
from bastion.services.audit.verify import verify_storage

from .conftest import Rig, make_rig


def report(rig: Rig):  # type: ignore[no-untyped-def]
    return verify_storage(
        rig.storage, signature_valid=rig.signer.verifier().valid, max_unsigned=10, wait=rig.wait()
    )


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


def test_prune_records_each_cut_with_its_anchor_and_seals_it(storage_url: str) -> None:
    """The record names the cut exactly (the anchor's seq and hash) and is signed at once:
    `verify` takes only a signed record as the reason a trail starts after seq 1."""
    rig = make_rig(storage_url, every=10)
    rig.fill(25)
    rig.clock.advance(days=400)
    now = rig.clock.now()
    prune(rig.storage, cutoff=now - timedelta(days=365), now=now, tenant="acme")
    with rig.storage.transaction() as tx:
        first, *_, record = list(tx.audit.iterate())
        last_checkpoint = tx.audit.last_checkpoint()
    assert record.action == "audit.retention" and record.details["anchorSeq"] == 20
    assert record.details["anchorHash"] == first.prev_hash and first.seq == 21
    assert last_checkpoint is not None and last_checkpoint.seq == record.seq


def test_prune_removes_nothing_when_its_record_cannot_be_written(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete and record are one transaction: a crash between them cannot leave a cut that
    nothing explains (which `verify` would report as deleted events)."""
    rig = make_rig(storage_url, every=10)
    rig.fill(25)
    with rig.storage.transaction() as tx:  # as a running bastion's idle sealer would
        tx.audit.seal_now()  # type: ignore[attr-defined]
    rig.clock.advance(days=400)
    now = rig.clock.now()

    def crash(*args: object, **kw: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(retention, "append_events", crash)
    with pytest.raises(RuntimeError):
        prune(rig.storage, cutoff=now - timedelta(days=365), now=now, tenant="acme")
    checked = report(rig)
    assert checked.ok, checked.reason
    assert (checked.first_seq, checked.events) == (1, 25)


def test_a_pruned_trail_verifies_where_masking_hashes_ids(storage_url: str) -> None:
    """``security.dataProtection.masking`` may hash every ``id``: the record is still known."""
    masker = FieldMasker(["id"], method="hash", hash_key=b"k" * 32)
    rig = make_rig(storage_url, every=10, fields=masker)
    rig.fill(25)
    rig.clock.advance(days=400)
    now = rig.clock.now()
    prune(rig.storage, cutoff=now - timedelta(days=365), now=now, tenant="acme")
    checked = report(rig)
    assert checked.ok, checked.reason
    assert checked.first_seq == 21
