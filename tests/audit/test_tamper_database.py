"""Tampering with the stored trail is found, and ``verify`` names the first broken seq:
an edited field, index column or timestamp (moved, or re-spelled on SQLite), a deleted or
reordered event, a truncated tail, the oldest events deleted as if by retention, a chain
re-hashed from scratch by someone without the signing key (also after removing the newest
checkpoints, once a running bastion would have sealed it), and a body bastion cannot have
written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bastion.backends.audit_rows import sqlite_timestamp
from bastion.core.audit_verify import VerifyReport
from bastion.core.model import AuditQuery
from bastion.crypto.checkpoints import CheckpointSigner
from bastion.services.audit import append_events, build_event
from bastion.services.audit.retention import SYSTEM_ACTOR, prune
from bastion.services.audit.verify import verify_storage

from .conftest import T0, Rig, make_rig
from .tamper_rows import RowTamper


@pytest.fixture
def sealed(storage_url: str) -> Iterator[tuple[Rig, RowTamper]]:
    """30 events, sealed by checkpoints at 1 (the first append), 10, 20 and 30."""
    rig = make_rig(storage_url, every=10)
    rig.fill(30)
    tamper = RowTamper(rig.storage, storage_url)
    yield rig, tamper
    tamper.close()
    rig.storage.close()


def verify(rig: Rig, **kw: object) -> VerifyReport:
    return verify_storage(
        rig.storage,
        signature_valid=rig.signer.verifier().valid,
        max_unsigned=rig.recorder.seal.every,
        wait=rig.wait(),
        **kw,  # type: ignore[arg-type]
    )


def test_intact_trail_verifies(sealed: tuple[Rig, RowTamper]) -> None:
    report = verify(sealed[0])
    assert report.ok, report.reason
    assert (report.events, report.first_seq, report.last_seq) == (30, 1, 30)
    assert report.signed_through == 30 and report.unsigned_tail == 0


def test_edited_field_is_found_at_its_seq(sealed: tuple[Rig, RowTamper]) -> None:
    rig, tamper = sealed
    tamper.edit(14, lambda e: replace(e, actor={**e.actor, "id": "mallory@example.com"}))
    report = verify(rig)
    assert report.first_broken_seq == 14 and "changed" in report.reason


def test_edited_column_is_found_at_its_seq(sealed: tuple[Rig, RowTamper]) -> None:
    rig, tamper = sealed
    tamper.edit(7, lambda e: replace(e, outcome="success", action="pattern.read"))
    assert verify(rig).first_broken_seq == 7


def test_edited_index_column_is_found(sealed: tuple[Rig, RowTamper]) -> None:
    """Hiding an event from ``audit list --actor`` by rewriting only its index column."""
    rig, tamper = sealed
    tamper.write(tamper.event(9), index_actor="someone-else")
    report = verify(rig)
    assert report.first_broken_seq == 9 and "index" in report.reason


def test_index_columns_written_whole_by_an_earlier_bastion_still_verify(
    sealed: tuple[Rig, RowTamper], storage_url: str
) -> None:
    """An actor id over 600 characters (or, where the database can hold it, with a NUL) was
    indexed whole before such columns were made storable: upgrading never makes it look
    changed. Rewriting the column to anything else still does."""
    rig, tamper = sealed
    names = ["x" * 700] + ([] if storage_url.startswith("postgresql") else ["a\x00b"])
    for name in names:
        [event] = rig.append(rig.event(actor={"type": "anonymous", "id": name}))
        tamper.write(event)  # the columns as the earlier bastion wrote them: the text whole
    assert verify(rig).ok, verify(rig).reason
    tamper.write(event, index_actor=name + "!")
    assert verify(rig).first_broken_seq == event.seq


def test_deleted_event_is_found(sealed: tuple[Rig, RowTamper]) -> None:
    rig, tamper = sealed
    tamper.delete(12)
    report = verify(rig)
    assert report.first_broken_seq == 12 and "missing" in report.reason


def test_reordered_events_are_found(sealed: tuple[Rig, RowTamper]) -> None:
    rig, tamper = sealed
    tamper.swap(5, 6)
    assert verify(rig).first_broken_seq == 5


def test_truncated_tail_is_found_from_the_checkpoint_that_outlives_it(
    sealed: tuple[Rig, RowTamper],
) -> None:
    rig, tamper = sealed
    tamper.truncate(from_seq=26)
    report = verify(rig)
    assert report.first_broken_seq == 26 and "truncated" in report.reason


def test_truncated_tail_with_its_checkpoints_is_found_by_a_shipped_copy(
    sealed: tuple[Rig, RowTamper],
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
    sealed: tuple[Rig, RowTamper],
) -> None:
    rig, tamper = sealed
    tamper.rehash_from(17, lambda e: replace(e, actor={**e.actor, "id": "mallory@example.com"}))
    report = verify(rig)
    assert report.first_broken_seq == 11  # the edit is after the checkpoint at 10
    assert "re-hashed" in report.reason


def test_rehashed_forgery_without_its_checkpoints_is_an_unsigned_run(
    sealed: tuple[Rig, RowTamper],
) -> None:
    rig, tamper = sealed
    tamper.rehash_from(12, lambda e: replace(e, outcome="success"))
    tamper.delete_checkpoints(from_seq=11)
    report = verify(rig)
    assert report.first_broken_seq == 11 and "not covered" in report.reason


def test_checkpoint_signed_by_another_key_is_refused(sealed: tuple[Rig, RowTamper]) -> None:
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


def test_a_shipped_checkpoint_that_disagrees_with_a_stored_one_is_a_break(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """The key once signed a forged head (as an export's seal could, before exports were
    checked first) and it replaced the stored checkpoint at 30: the shipped one still counts."""
    rig, tamper = sealed
    with rig.storage.transaction() as tx:
        [shipped] = tx.audit.checkpoints(from_seq=30)
    tamper.rehash_from(12, lambda e: replace(e, outcome="failure"))
    tamper.delete_checkpoints(from_seq=12)
    forged = rig.signer.sign(30, tamper.event(30).hash, now=T0)
    with rig.storage.transaction() as tx:
        tx.audit.insert_checkpoint(forged)
    assert verify(rig).ok  # the database alone holds one consistent, signed history
    report = verify(rig, extra_checkpoints=[shipped])
    assert report.first_broken_seq == 11 and "re-hashed" in report.reason


# The oldest events: only retention may remove them, and only its signed record explains it.


def test_deleted_oldest_events_are_a_break_unless_retention_explains_them(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """Events 1-20 deleted with their checkpoints; the one at 20 left, as an anchor."""
    rig, tamper = sealed
    with rig.storage.transaction() as tx:
        shipped = tx.audit.checkpoints()
    tamper.delete(*range(1, 21))
    tamper.delete_checkpoints_before(20)
    for witnesses in ([], shipped):  # with the checkpoints kept elsewhere, or without
        report = verify(rig, extra_checkpoints=witnesses)
        assert report.first_broken_seq == 1, report.reason
        assert "no signed audit.retention record explains the removal of seq 1-20" in (
            report.reason
        )


def test_oldest_events_removed_by_retention_verify(sealed: tuple[Rig, RowTamper]) -> None:
    """With the checkpoints of the removed events shipped elsewhere too: retention explains."""
    rig, _ = sealed
    with rig.storage.transaction() as tx:
        shipped = tx.audit.checkpoints()
    rig.clock.advance(days=400)
    now = rig.clock.now()
    assert prune(rig.storage, cutoff=now - timedelta(days=1), now=now, tenant="acme").removed
    for witnesses in ([], shipped):
        report = verify(rig, extra_checkpoints=witnesses)
        assert report.ok, report.reason
        assert (report.first_seq, report.last_seq, report.unsigned_tail) == (21, 31, 0)


def test_a_retention_record_forged_at_the_head_explains_nothing(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """Without the key, a record naming the cut can be appended, but not signed."""
    rig, tamper = sealed
    anchor = tamper.event(20)
    tamper.delete(*range(1, 21))
    tamper.delete_checkpoints_before(20)
    forged = build_event(
        action="audit.retention",
        outcome="success",
        tenant="acme",
        now=rig.clock.now(),
        actor=dict(SYSTEM_ACTOR),
        details={"removed": 20, "anchorSeq": 20, "anchorHash": anchor.hash},
    )
    with rig.raw.transaction() as tx:  # chained as bastion would, but no checkpoint seals it
        append_events(tx, [forged])
    report = verify(rig)
    assert report.first_broken_seq == 1 and "no signed audit.retention record" in report.reason


def test_signed_retention_record_from_before_anchor_hash_still_explains_its_cut(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """Records written by earlier releases name ``anchorSeq`` only; signed, they still explain
    their cut (the anchor checkpoint pins its hash)."""
    rig, tamper = sealed
    tamper.delete(*range(1, 21))
    tamper.delete_checkpoints_before(20)
    legacy = build_event(
        action="audit.retention",
        outcome="success",
        tenant="acme",
        now=rig.clock.now(),
        actor=dict(SYSTEM_ACTOR),
        details={"removed": 20, "anchorSeq": 20, "cutoff": rig.clock.now().isoformat()},
    )
    with rig.raw.transaction() as tx:
        append_events(tx, [legacy])
    head = tamper.event(31)
    assert head.action == "audit.retention"
    with rig.storage.transaction() as tx:
        tx.audit.insert_checkpoint(rig.signer.sign(31, head.hash, now=rig.clock.now()))
    report = verify(rig)
    assert report.ok, report.reason
    assert (report.first_seq, report.last_seq) == (21, 31)


def test_events_deleted_after_a_retention_cut_are_a_break_from_that_cut(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """Retention removed 1-20 (its record at 31); then 21-30 go too, the checkpoint at 30 kept
    as if it were retention's anchor."""
    rig, tamper = sealed
    rig.clock.advance(days=400)
    now = rig.clock.now()
    prune(rig.storage, cutoff=now - timedelta(days=1), now=now, tenant="acme")
    tamper.delete(*range(21, 31))
    tamper.delete_checkpoints_before(30)
    report = verify(rig)
    assert report.first_broken_seq == 21 and "removal of seq 21-30" in report.reason


# What is read back must be what the hash covers.


def test_timestamp_edited_below_the_millisecond_is_found(sealed: tuple[Rig, RowTamper]) -> None:
    """The hash covers milliseconds; a column moved within one still moves the event in or out
    of a time filter (``until``)."""
    rig, tamper = sealed
    moved = tamper.event(15).timestamp + timedelta(microseconds=999)
    tamper.set_timestamp(15, moved)
    assert tamper.event(15).timestamp == moved
    report = verify(rig)
    assert report.first_broken_seq == 15 and "timestamp" in report.reason


@pytest.mark.parametrize("value", [float("nan"), 2**53 + 1], ids=["nan", "huge-integer"])
def test_body_no_canonical_json_can_hold_is_found_at_its_seq(
    sealed: tuple[Rig, RowTamper], value: float
) -> None:
    """JSON parsing accepts NaN and any integer; RFC 8785 holds neither, so bastion never
    wrote one: the event is named as changed, not ``unexpected CanonicalJSONError``."""
    rig, tamper = sealed
    tamper.edit(13, lambda e: replace(e, details={"n": value}))
    report = verify(rig)
    assert report.first_broken_seq == 13 and "changed" in report.reason


# On SQLite the timestamp column is text, which time filters compare: another spelling of the
# same instant reads back as the same time (the hash still matches) but sorts elsewhere.


@pytest.fixture
def spaced(sqlite_url: str) -> Iterator[tuple[Rig, RowTamper]]:
    """20 events two seconds apart on SQLite, sealed at 1, 10 and 20."""
    rig = make_rig(sqlite_url, every=10)
    for n in range(20):
        rig.append(rig.event(n))
        rig.clock.advance(seconds=2)
    tamper = RowTamper(rig.storage, sqlite_url)
    yield rig, tamper
    tamper.close()
    rig.storage.close()


def respelled(moment: datetime, *, earlier_by: int) -> str:
    """``moment`` as a text that reads back as the same instant but sorts ``earlier_by``
    seconds earlier: the local time of a negative offset."""
    return sqlite_timestamp(moment - timedelta(seconds=earlier_by)) + f"-00:00:{earlier_by:02d}"


def seqs(rig: Rig, **filters: object) -> list[int]:
    with rig.storage.transaction() as tx:
        return [e.seq for e in tx.audit.query(AuditQuery(limit=100, **filters))]  # type: ignore[arg-type]


@pytest.mark.parametrize("spelling", ["offset", "T", "milliseconds"])
def test_timestamp_column_respelled_as_the_same_instant_is_found(
    spaced: tuple[Rig, RowTamper], spelling: str
) -> None:
    rig, tamper = spaced
    moment = tamper.event(15).timestamp
    text = {
        "offset": respelled(moment, earlier_by=11),
        "T": sqlite_timestamp(moment).replace(" ", "T"),
        "milliseconds": sqlite_timestamp(moment)[:23],
    }[spelling]
    tamper.set_timestamp_text(15, text)
    assert tamper.event(15).timestamp == moment  # so its hash still matches
    report = verify(rig)
    assert report.first_broken_seq == 15 and "timestamp column" in report.reason


def test_respelled_timestamp_hides_no_other_event_from_since(
    spaced: tuple[Rig, RowTamper],
) -> None:
    """Event 15's text made to sort just after ``since`` (its time is 10 s later): taken for
    the first event of the window, it hid events 10-14 from ``audit list --since``."""
    rig, tamper = spaced
    since = tamper.event(10).timestamp - timedelta(seconds=1)
    assert seqs(rig, since=since) == list(range(10, 21))
    tamper.set_timestamp_text(15, respelled(tamper.event(15).timestamp, earlier_by=11))
    assert seqs(rig, since=since) == list(range(10, 21))


def test_respelled_timestamp_hides_no_other_event_from_until(
    spaced: tuple[Rig, RowTamper],
) -> None:
    """Event 12 spelled with a ``T`` sorts after every same-day time written with a space:
    taken for the first event at or after ``until``, it hid events 12-20. Now it hides only
    itself (its text is after ``until``), and verify names it."""
    rig, tamper = spaced
    until = tamper.event(20).timestamp + timedelta(seconds=1)
    tamper.set_timestamp_text(12, sqlite_timestamp(tamper.event(12).timestamp).replace(" ", "T"))
    assert seqs(rig, until=until) == [seq for seq in range(1, 21) if seq != 12]
    assert verify(rig).first_broken_seq == 12


# The newest events: unsealed, but no more of them, nor for longer, than a running bastion
# leaves (checkpoints every 10 events or 1 hour here, so 95 minutes with the slack).


def test_rehashed_tail_without_its_checkpoints_is_found_once_bastion_would_have_sealed_it(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """The checkpoints after seq 20 deleted, event 25 edited, 25-30 re-hashed: ten unsealed
    events, within the count limit. While a running bastion may not have sealed them yet it
    verifies (the database alone cannot tell); after that, never again."""
    rig, tamper = sealed
    tamper.delete_checkpoints(from_seq=21)
    tamper.rehash_from(25, lambda e: replace(e, actor={**e.actor, "id": "mallory@example.com"}))
    assert verify(rig).ok
    rig.clock.advance(hours=1)
    assert verify(rig).ok, "a tail within the interval and its slack still verifies"
    rig.clock.advance(minutes=36)
    report = verify(rig)
    assert report.first_broken_seq == 21, report.reason
    assert "waited for a checkpoint" in report.reason
    assert "the checkpoints after seq 20 were removed, or bastion stopped" in report.reason


def test_unsealed_event_dated_after_the_sealer_was_due_is_found_at_once(
    sealed: tuple[Rig, RowTamper],
) -> None:
    """The same forgery dated two hours on: a running bastion seals an event recorded that
    long after its newest checkpoint in the event's own transaction."""
    rig, tamper = sealed
    tamper.delete_checkpoints(from_seq=21)
    later = rig.clock.now() + timedelta(hours=2)
    tamper.rehash_from(27, lambda e: replace(e, timestamp=later))
    for seq in range(27, 31):  # the columns too (the chain keeps timestamps from decreasing)
        tamper.set_timestamp(seq, later)
    report = verify(rig)
    assert report.first_broken_seq == 27, report.reason
    assert "yet no checkpoint seals it" in report.reason
