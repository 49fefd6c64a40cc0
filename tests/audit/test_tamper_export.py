"""Exports verify offline with the public key alone, and every kind of tampering with the
file is found: an edited field, a deleted or reordered event, a truncated tail, a re-hashed
forgery (with or without its checkpoints), another key. And an export refuses to sign a
stored trail that has been tampered with: a re-hashed history, a cut tail or head, a tail
whose checkpoints were removed, a timestamp re-spelled to move the start of its range."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bastion.backends.audit_rows import sqlite_timestamp
from bastion.crypto.checkpoints import CheckpointSigner
from bastion.errors import AuditIntegrityError
from bastion.services.audit.verify import verify_export, verify_storage

from .conftest import Rig, export_to, make_rig, offline, write_export
from .tamper import rehash_export_lines
from .tamper_rows import RowTamper


@pytest.fixture
def trail(sqlite_url: str) -> Iterator[Rig]:
    rig = make_rig(sqlite_url, every=10)
    rig.fill(25)
    yield rig
    rig.storage.close()


def edit_lines(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def event_line(lines: list[str], seq: int) -> int:
    return next(i for i, line in enumerate(lines) if f'"seq":{seq},"prevHash"' in line)


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_export_verifies_offline(trail: Rig, tmp_path: Path, fmt: str) -> None:
    path = write_export(trail, tmp_path / f"audit.{fmt}", fmt)
    if fmt == "json":
        document = json.loads(path.read_text())
        assert len(document["events"]) == 25 and document["seal"]
    report = offline(trail, path)
    assert report.ok, report.reason
    assert (report.events, report.signed_through, report.unsigned_tail) == (25, 25, 0)


def test_gzipped_export_verifies(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "audit.ndjson")
    packed = tmp_path / "audit.ndjson.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert offline(trail, packed).ok


def test_export_from_a_point_in_time_is_anchored(trail: Rig, tmp_path: Path) -> None:
    with trail.storage.transaction() as tx:
        since = next(e for e in tx.audit.iterate() if e.seq == 13).timestamp
    path = write_export(trail, tmp_path / "recent.ndjson", since=since)
    report = offline(trail, path)
    assert report.ok, report.reason
    assert (report.first_seq, report.last_seq) == (13, 25)


def test_edited_field_in_export_is_found(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")

    def change(lines: list[str]) -> list[str]:
        i = event_line(lines, 8)
        lines[i] = lines[i].replace('"outcome":"success"', '"outcome":"failure"')
        return lines

    edit_lines(path, change)
    assert offline(trail, path).first_broken_seq == 8


def test_deleted_event_in_export_is_found(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    edit_lines(path, lambda lines: [x for i, x in enumerate(lines) if i != event_line(lines, 9)])
    report = offline(trail, path)
    assert report.first_broken_seq == 9 and "missing" in report.reason


def test_reordered_events_in_export_are_found(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")

    def swap(lines: list[str]) -> list[str]:
        i, j = event_line(lines, 4), event_line(lines, 5)
        lines[i], lines[j] = lines[j], lines[i]
        return lines

    edit_lines(path, swap)
    assert offline(trail, path).first_broken_seq == 4


def test_truncated_export_is_found(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    edit_lines(path, lambda lines: lines[: event_line(lines, 18)])
    report = offline(trail, path)
    assert report.first_broken_seq == 18


def test_rehashed_export_is_found(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    edit_lines(path, lambda lines: rehash_export_lines(lines, from_seq=15, new_actor="mallory"))
    report = offline(trail, path)
    assert report.first_broken_seq == 11 and "re-hashed" in report.reason


def test_rehashed_export_without_checkpoints_is_found(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")

    def forge(lines: list[str]) -> list[str]:
        kept = [x for x in lines if "auditCheckpoint" not in x]
        return rehash_export_lines(kept, from_seq=3, new_actor="mallory")

    edit_lines(path, forge)
    report = offline(trail, path)
    assert report.first_broken_seq == 1 and "not covered" in report.reason


def test_export_checked_with_another_public_key_fails(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    stranger = CheckpointSigner.from_pepper(b"someone-else-" + b"z" * 32)
    report = verify_export([path], signature_valid=stranger.verifier().valid)
    assert not report.ok and "signature" in report.reason


# An export never seals (or anchors) a trail that `bastion audit verify` rejects: someone who
# can write the database but has no key must not get the key's signature over their history.


@pytest.fixture
def tamper(trail: Rig, sqlite_url: str) -> Iterator[RowTamper]:
    tampering = RowTamper(trail.storage, sqlite_url)
    yield tampering
    tampering.close()


def refused_export(rig: Rig, fmt: str = "ndjson", **kw: object) -> tuple[str, str]:
    """(the error, what was written) of an export that fails."""
    out = io.StringIO()
    with pytest.raises(AuditIntegrityError) as caught:
        export_to(out, rig, fmt, **kw)
    return str(caught.value), out.getvalue()


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_export_refuses_to_seal_a_rewritten_history(
    trail: Rig, tamper: RowTamper, fmt: str
) -> None:
    """Event 12 rewritten, 12-25 re-hashed, the checkpoints from 12 on deleted."""
    tamper.rehash_from(12, lambda e: replace(e, actor={**e.actor, "id": "mallory"}))
    tamper.delete_checkpoints(from_seq=12)
    error, written = refused_export(trail, fmt)
    assert "first broken seq 11" in error and "not covered by a signed checkpoint" in error
    assert written == ""


def test_export_refuses_to_seal_a_truncated_tail(trail: Rig, tamper: RowTamper) -> None:
    """Events 21-25 deleted; the stored checkpoint at 25 (a manual seal) still names 25."""
    with trail.storage.transaction() as tx:
        tx.audit.seal_now()  # type: ignore[attr-defined]
    tamper.truncate(from_seq=21)
    error, written = refused_export(trail)
    assert "first broken seq 21" in error and "truncated" in error
    assert written == ""


def test_export_refuses_to_anchor_a_slice_after_a_rewritten_history(
    trail: Rig, tamper: RowTamper
) -> None:
    """The rewrite lies before the exported range: the anchor would sign its forged hash."""
    tamper.rehash_from(12, lambda e: replace(e, details={"n": -1}))
    tamper.delete_checkpoints(from_seq=12)
    since = tamper.event(14).timestamp
    error, written = refused_export(trail, since=since)
    assert "first broken seq 11" in error and written == ""


def test_range_export_checks_from_its_anchor_not_the_whole_trail(
    trail: Rig, tamper: RowTamper, tmp_path: Path
) -> None:
    """Event 5 edited: the trail does not verify, nor does an export of all of it; an export
    from event 22 checks the trail from the checkpoint at 20, which the edit cannot reach,
    and is sealed and verifies. Between that anchor and the range, an edit still stops it."""
    tamper.edit(5, lambda e: replace(e, details={"n": -1}))
    error, _ = refused_export(trail)
    assert "first broken seq 5" in error
    since = tamper.event(22).timestamp
    path = write_export(trail, tmp_path / "recent.ndjson", since=since)
    report = offline(trail, path)
    assert report.ok, report.reason
    assert (report.first_seq, report.last_seq) == (22, 25)
    tamper.edit(21, lambda e: replace(e, outcome="failure"))
    error, written = refused_export(trail, since=since)
    assert "first broken seq 21" in error and written == ""


def test_export_refuses_a_trail_whose_oldest_events_were_deleted(
    trail: Rig, tamper: RowTamper
) -> None:
    tamper.delete(*range(1, 11))
    tamper.delete_checkpoints_before(10)
    error, written = refused_export(trail)
    assert "first broken seq 1" in error and "audit.retention" in error
    assert written == ""


def test_export_stops_unsealed_when_the_trail_changes_after_its_check(
    trail: Rig, tamper: RowTamper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unsigned tail re-hashed between the check and the stream (each event still links
    and matches its hash): what streamed is not what was checked, so there is no seal, and
    what was written does not verify."""

    def check_then_tamper(*args: Any, **kw: Any) -> Any:
        report = verify_storage(*args, **kw)
        tamper.rehash_from(23, lambda e: replace(e, outcome="failure"))
        return report

    monkeypatch.setattr("bastion.services.audit.export.verify_storage", check_then_tamper)
    error, written = refused_export(trail)
    assert "changed while it was exported" in error
    path = tmp_path / "partial.ndjson"
    path.write_text(written)
    assert "auditCheckpoint" not in written.splitlines()[-1]
    assert not offline(trail, path).ok


def test_export_refuses_to_seal_a_tail_whose_checkpoints_were_removed(sqlite_url: str) -> None:
    """Checkpoints every 1,000 events or hour: the head sealed at 25 (the idle sealer), that
    checkpoint deleted, event 22 edited and 22-25 re-hashed. 24 unsealed events are within
    the count limit; once a running bastion would have sealed them, no export signs them."""
    rig = make_rig(sqlite_url, every=1000, interval=timedelta(hours=1))
    tamper = RowTamper(rig.storage, sqlite_url)
    try:
        rig.fill(25)
        with rig.storage.transaction() as tx:
            tx.audit.seal_now()  # type: ignore[attr-defined]
        tamper.delete_checkpoints(from_seq=2)
        tamper.rehash_from(22, lambda e: replace(e, actor={**e.actor, "id": "mallory"}))
        rig.clock.advance(hours=2)
        error, written = refused_export(rig)
    finally:
        tamper.close()
        rig.storage.close()
    assert "first broken seq 2" in error and "waited for a checkpoint" in error
    assert written == ""


def test_export_refuses_a_range_whose_start_a_respelled_timestamp_moved(sqlite_url: str) -> None:
    """25 events two seconds apart; event 20's timestamp text made to sort between ``since``
    and event 14 (the same instant, written as the local time of an offset): an export from
    ``since`` started at 20, sealed and verifying offline, without events 14-19."""
    rig = make_rig(sqlite_url, every=10)
    tamper = RowTamper(rig.storage, sqlite_url)
    try:
        for n in range(25):
            rig.append(rig.event(n))
            rig.clock.advance(seconds=2)
        since = tamper.event(14).timestamp - timedelta(seconds=1)
        moment = tamper.event(20).timestamp
        offset = int((moment - since).total_seconds())
        tamper.set_timestamp_text(20, sqlite_timestamp(since) + f"-00:00:{offset:02d}")
        assert tamper.event(20).timestamp == moment
        error, written = refused_export(rig, since=since)
    finally:
        tamper.close()
        rig.storage.close()
    assert "first broken seq 20" in error and "timestamp column" in error
    assert written == ""
