"""Tampering with the stored trail is found, and ``verify`` names the first broken seq:
an edited field or index column, a deleted or reordered event, a truncated tail, and a chain
re-hashed from scratch by someone without the signing key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from bastion.core.audit_verify import VerifyReport
from bastion.crypto.checkpoints import CheckpointSigner
from bastion.services.audit.verify import verify_storage

from .conftest import Rig, make_rig
from .tamper import Tamper


@pytest.fixture
def sealed(storage_url: str) -> Iterator[tuple[Rig, Tamper]]:
    """30 events, sealed by checkpoints at 1 (the first append), 10, 20 and 30."""
    rig = make_rig(storage_url, every=10)
    rig.fill(30)
    tamper = Tamper(rig.storage, storage_url)
    yield rig, tamper
    tamper.close()
    rig.storage.close()


def verify(rig: Rig, **kw: object) -> VerifyReport:
    return verify_storage(
        rig.storage,
        signature_valid=rig.signer.verifier().valid,
        max_unsigned=rig.recorder.seal.every,
        **kw,  # type: ignore[arg-type]
    )


def test_intact_trail_verifies(sealed: tuple[Rig, Tamper]) -> None:
    report = verify(sealed[0])
    assert report.ok, report.reason
    assert (report.events, report.first_seq, report.last_seq) == (30, 1, 30)
    assert report.signed_through == 30 and report.unsigned_tail == 0


def test_edited_field_is_found_at_its_seq(sealed: tuple[Rig, Tamper]) -> None:
    rig, tamper = sealed
    tamper.edit(14, lambda e: replace(e, actor={**e.actor, "id": "mallory@example.com"}))
    report = verify(rig)
    assert report.first_broken_seq == 14 and "changed" in report.reason


def test_edited_column_is_found_at_its_seq(sealed: tuple[Rig, Tamper]) -> None:
    rig, tamper = sealed
    tamper.edit(7, lambda e: replace(e, outcome="success", action="pattern.read"))
    assert verify(rig).first_broken_seq == 7


def test_edited_index_column_is_found(sealed: tuple[Rig, Tamper]) -> None:
    """Hiding an event from ``audit list --actor`` by rewriting only its index column."""
    rig, tamper = sealed
    tamper.write(tamper.event(9), index_actor="someone-else")
    report = verify(rig)
    assert report.first_broken_seq == 9 and "index" in report.reason


def test_deleted_event_is_found(sealed: tuple[Rig, Tamper]) -> None:
    rig, tamper = sealed
    tamper.delete(12)
    report = verify(rig)
    assert report.first_broken_seq == 12 and "missing" in report.reason


def test_reordered_events_are_found(sealed: tuple[Rig, Tamper]) -> None:
    rig, tamper = sealed
    tamper.swap(5, 6)
    assert verify(rig).first_broken_seq == 5


def test_truncated_tail_is_found_from_the_checkpoint_that_outlives_it(
    sealed: tuple[Rig, Tamper],
) -> None:
    rig, tamper = sealed
    tamper.truncate(from_seq=26)
    report = verify(rig)
    assert report.first_broken_seq == 26 and "truncated" in report.reason


def test_truncated_tail_with_its_checkpoints_is_found_by_a_shipped_copy(
    sealed: tuple[Rig, Tamper],
) -> None:
    """The attacker also deletes the checkpoints; the ones shipped elsewhere still name them."""
    rig, tamper = sealed
    with rig.storage.transaction() as tx:
        shipped = tx.audit.checkpoints()
    tamper.truncate(from_seq=16)
    tamper.delete_checkpoints(from_seq=16)
    assert verify(rig).ok  # the database alone cannot tell a short trail from a cut one
    report = verify(rig, extra_checkpoints=shipped)
    assert report.first_broken_seq == 16 and "truncated" in report.reason


def test_rehashed_forgery_is_found_after_the_last_matching_checkpoint(
    sealed: tuple[Rig, Tamper],
) -> None:
    rig, tamper = sealed
    tamper.rehash_from(17, lambda e: replace(e, actor={**e.actor, "id": "mallory@example.com"}))
    report = verify(rig)
    assert report.first_broken_seq == 11  # the edit is after the checkpoint at 10
    assert "re-hashed" in report.reason


def test_rehashed_forgery_without_its_checkpoints_is_an_unsigned_run(
    sealed: tuple[Rig, Tamper],
) -> None:
    rig, tamper = sealed
    tamper.rehash_from(12, lambda e: replace(e, outcome="success"))
    tamper.delete_checkpoints(from_seq=11)
    report = verify(rig)
    assert report.first_broken_seq == 11 and "not covered" in report.reason


def test_checkpoint_signed_by_another_key_is_refused(sealed: tuple[Rig, Tamper]) -> None:
    rig, tamper = sealed
    tamper.rehash_from(25, lambda e: replace(e, details={"n": -1}))
    tamper.delete_checkpoints(from_seq=30)
    forger = CheckpointSigner.from_pepper(b"not-the-real-pepper-" + b"y" * 20)
    forged = forger.sign(30, tamper.event(30).hash, now=rig.clock.now())
    with rig.storage.transaction() as tx:
        tx.audit.insert_checkpoint(forged)
    report = verify(rig)
    assert report.first_broken_seq == 30 and "signature" in report.reason
    assert report.checkpoints == 3  # 1, 10 and 20 still verify
