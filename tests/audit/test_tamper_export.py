"""Exports verify offline with the public key alone, and every kind of tampering with the
file is found: an edited field, a deleted or reordered event, a truncated tail, a re-hashed
forgery (with or without its checkpoints), another key."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bastion.crypto.checkpoints import CheckpointSigner
from bastion.services.audit.verify import verify_export

from .conftest import Rig, make_rig, offline, write_export
from .tamper import rehash_export_lines


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
