"""Offline verification fails closed: a file that is not a json or ndjson export (another
format, an empty or binary file, a document cut short, a line that is no export record, an
export of nothing) is refused with its name and the problem, never reported as a trail that
verifies. What bastion exports still verifies: plain, gzipped, on one line, several in order,
of a pruned trail."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.errors import RequestRejectedError
from bastion.services.audit.retention import prune
from bastion.services.audit.verify import read_export_checkpoints

from .conftest import Rig, make_rig, offline, write_export


@pytest.fixture
def trail() -> Iterator[Rig]:
    rig = make_rig("memory://", every=10)
    rig.fill(25)  # checkpoints at 1, 10, 20; an export seals 25
    yield rig
    rig.storage.close()


def refused(rig: Rig, path: Path) -> str:
    with pytest.raises(RequestRejectedError) as caught:
        offline(rig, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_offline_verify_rejects_a_file_that_is_not_an_export(trail: Rig, tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/false\n")
    assert "not a json or ndjson audit export" in refused(trail, passwd)


def test_offline_verify_rejects_an_empty_file(trail: Rig, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    assert "empty" in refused(trail, empty)
    blank = tmp_path / "blank.ndjson"
    blank.write_text("\n  \n\n")
    assert "empty" in refused(trail, blank)


def test_offline_verify_rejects_a_binary_file(trail: Rig, tmp_path: Path) -> None:
    binary = tmp_path / "a.json"
    binary.write_bytes(b"{\xff\xfe\x00garbage\n")
    assert "not UTF-8" in refused(trail, binary)


@pytest.mark.parametrize("fmt", ["csv", "syslog", "cef"])
def test_offline_verify_rejects_csv_syslog_and_cef(trail: Rig, tmp_path: Path, fmt: str) -> None:
    path = write_export(trail, tmp_path / f"a.{fmt}", fmt)
    assert f"a {fmt} audit export, which cannot be verified" in refused(trail, path)


@pytest.mark.parametrize("keep", [100, 150, 1500, -200, -3, -2])
def test_offline_verify_rejects_a_truncated_json_export(
    trail: Rig, tmp_path: Path, keep: int
) -> None:
    """Cut anywhere: in the header, in the lists, inside the seal, before its last bracket."""
    whole = write_export(trail, tmp_path / "a.json", "json").read_bytes()
    assert whole.endswith(b"]}\n")
    cut = tmp_path / "t.json"
    cut.write_bytes(whole[:keep])
    assert refused(trail, cut) == f"{cut}: the export ends early (truncated JSON)"


def test_offline_verify_rejects_an_ndjson_export_whose_last_line_is_cut(
    trail: Rig, tmp_path: Path
) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    path.write_bytes(path.read_bytes()[:-30])
    assert "ends early" in refused(trail, path)


def test_offline_verify_rejects_a_damaged_gzip(trail: Rig, tmp_path: Path) -> None:
    packed = tmp_path / "a.ndjson.gz"
    packed.write_bytes(gzip.compress(write_export(trail, tmp_path / "a.ndjson").read_bytes())[:300])
    assert "gzip" in refused(trail, packed)


def test_offline_verify_names_a_missing_file(trail: Rig, tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.json"
    assert refused(trail, missing) == f"{missing}: cannot read it: No such file or directory"
    assert refused(trail, tmp_path) == f"{tmp_path}: cannot read it: Is a directory"


def test_offline_verify_rejects_lines_that_are_not_export_records(
    trail: Rig, tmp_path: Path
) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    lines = path.read_text().splitlines()
    for foreign, problem in [
        ("hello", "not a JSON record"),
        ('{"user":"mallory"}', "not an audit event, checkpoint or export header"),
        ("[1, 2]", "not a JSON record"),
        (lines[0], "an export header after the first record"),
    ]:
        path.write_text("\n".join([*lines[:4], foreign, *lines[4:]]) + "\n")
        assert refused(trail, path).startswith(f"{path}: line 5: {problem}")


def test_offline_verify_rejects_a_json_export_that_is_not_as_written(
    trail: Rig, tmp_path: Path
) -> None:
    path = write_export(trail, tmp_path / "a.json", "json")
    text = path.read_text()
    cases = {
        "after the end": text + '{"seq":26}\n',
        "a comma is missing": text.replace("},\n{", "}\n{", 1),
        "expected '],'": text.replace("}\n],", "},\n],", 1),
        "not a checkpoint in the 'seal' list": text.replace(
            '"seal":[\n{"auditCheckpoint":', '"seal":[\n{"timestamp":', 1
        ),
        "format 'bastion-audit-export/2'": text.replace("export/1", "export/2", 1),
    }
    for problem, changed in cases.items():
        path.write_text(changed)
        assert problem in refused(trail, path), problem
    document = json.loads(text)
    del document["seal"]
    path.write_text(json.dumps(document))
    assert "no 'seal' list" in refused(trail, path)


@pytest.mark.parametrize(
    ("fmt", "problem"),
    [("json", "holds no audit events, so there is nothing to verify"), ("ndjson", "is empty")],
)
def test_offline_verify_rejects_an_export_of_an_empty_trail(
    tmp_path: Path, fmt: str, problem: str
) -> None:
    """bastion exports an empty trail without a seal: nothing in it is signed, so nothing
    shows it came from bastion or was complete, and it does not verify."""
    rig = make_rig("memory://")
    path = write_export(rig, tmp_path / f"empty.{fmt}", fmt)
    assert problem in refused(rig, path)


def test_ndjson_export_cut_at_a_stored_checkpoint_is_found_by_its_header(
    trail: Rig, tmp_path: Path
) -> None:
    """Cut after event 20 (checkpointed) with the seal gone, but the header left alone."""
    path = write_export(trail, tmp_path / "a.ndjson")
    lines = path.read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"seq":21,"prevHash"' in line)
    path.write_text("\n".join(lines[:cut]) + "\n")
    report = offline(trail, path)
    assert report.first_broken_seq == 21 and "truncated" in report.reason


def test_json_export_on_one_line_still_verifies(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.json", "json")
    path.write_text(json.dumps(json.loads(path.read_text()), separators=(",", ":")))
    report = offline(trail, path)
    assert report.ok and report.events == 25


def test_gzipped_json_export_still_verifies(trail: Rig, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "a.json", "json")
    packed = tmp_path / "export.bin"  # found by its magic bytes, whatever its name
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert offline(trail, packed).ok


def test_several_exports_in_order_still_verify(trail: Rig, tmp_path: Path) -> None:
    older = write_export(trail, tmp_path / "older.ndjson")
    trail.clock.advance(minutes=1)
    since = trail.clock.now()
    trail.fill(7)
    newer = write_export(trail, tmp_path / "newer.json", "json", since=since)
    report = offline(trail, older, newer)
    assert report.ok, report.reason
    assert (report.first_seq, report.last_seq) == (1, 32)


def test_export_of_a_pruned_trail_still_verifies(trail: Rig, tmp_path: Path) -> None:
    trail.clock.advance(days=400)
    trail.fill(5)
    now = trail.clock.now()
    assert prune(trail.storage, cutoff=now - timedelta(days=365), now=now, tenant="acme").removed
    for fmt in ("json", "ndjson"):
        report = offline(trail, write_export(trail, tmp_path / f"pruned.{fmt}", fmt))
        assert report.ok, report.reason
        assert report.first_seq == 21


def test_checkpoints_files_must_hold_checkpoints(trail: Rig, tmp_path: Path) -> None:
    """``audit verify --checkpoints``: the file destination's NDJSON (no header) is read;
    a file that adds no checkpoint would add no check, so it is refused."""
    path = write_export(trail, tmp_path / "a.ndjson")
    log = tmp_path / "audit.log"
    log.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    assert [c.seq for c in read_export_checkpoints([log])] == [1, 10, 20, 25]
    events_only = tmp_path / "events.log"
    events_only.write_text(
        "\n".join(x for x in log.read_text().splitlines() if "auditCheckpoint" not in x) + "\n"
    )
    with pytest.raises(RequestRejectedError, match="holds no checkpoints"):
        read_export_checkpoints([events_only])
    with pytest.raises(RequestRejectedError, match="a csv audit export"):
        read_export_checkpoints([write_export(trail, tmp_path / "a.csv", "csv")])


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_offline_verify_breaks_at_an_event_with_a_duplicate_key(
    trail: Rig, tmp_path: Path, fmt: str
) -> None:
    """``"outcome":"denied","outcome":"success"``: Python keeps the last value, which the hash
    covers; a reader that keeps the first sees a denial. RFC 8785 input has no such object."""
    path = write_export(trail, tmp_path / f"a.{fmt}", fmt)
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if '"seq":8,"prevHash"' in line)
    lines[number] = lines[number].replace(
        '"outcome":"success"', '"outcome":"denied","outcome":"success"'
    )
    path.write_text("\n".join(lines) + "\n")
    report = offline(trail, path)
    assert report.first_broken_seq == 8
    assert report.reason == (
        f"{path}: line {number + 1}: the key 'outcome' appears twice in one object"
        " (RFC 8785 forbids it)"
    )


def test_offline_verify_refuses_a_header_or_checkpoint_with_a_duplicate_key(
    trail: Rig, tmp_path: Path
) -> None:
    path = write_export(trail, tmp_path / "a.ndjson")
    lines = path.read_text().splitlines()
    cases = {
        1: lines[0].replace('"firstSeq":1,', '"firstSeq":1,"firstSeq":1,'),
        2: lines[1].replace('"seq":1,', '"seq":1,"seq":1,'),
    }
    for number, changed in cases.items():
        path.write_text("\n".join([*lines[: number - 1], changed, *lines[number:]]) + "\n")
        assert refused(trail, path) == (
            f"{path}: line {number}: the key '{'firstSeq' if number == 1 else 'seq'}' appears"
            " twice in one object (RFC 8785 forbids it)"
        )
    document = write_export(trail, tmp_path / "b.json", "json")
    whole = json.dumps(json.loads(document.read_text()), separators=(",", ":"))
    document.write_text(whole.replace('"outcome":"success"', '"outcome":"x","outcome":"success"'))
    assert "line 1: the key 'outcome' appears twice" in refused(trail, document)
