"""``bastion audit verify --export``: what auditors run offline. A file that is not a json or
ndjson export, or a file that cannot be read, is one ``error:`` line naming it and a non-zero
exit, never ``ok``; a real export still verifies. ``bastion audit export -o``: the file is
0600 whatever was there, a path it cannot write is one line, and a trail that does not verify
leaves no file. A command records and seals in one go; a tail that lost its checkpoints long
ago is refused by both, in one line."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bastion.config import load_config
from bastion.services.audit import append_events, build_event
from bastion.wiring import build_services
from tests.audit.tamper import Tamper
from tests.e2e.procs import bastion


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("verify-export")
    bastion(["init"], cwd=cwd)
    (cwd / "pub.pem").write_text(bastion(["audit", "public-key"], cwd=cwd).stdout)
    for fmt in ("json", "csv"):
        bastion(["audit", "export", "--format", fmt, "-o", f"a.{fmt}"], cwd=cwd)
    return cwd


def verify_export(workdir: Path, name: str) -> tuple[int, str, str]:
    args = ["audit", "verify", "--export", name, "--public-key", "pub.pem"]
    result = bastion(args, cwd=workdir, check=False)
    return result.returncode, result.stdout, result.stderr


def test_offline_verify_of_a_real_export_says_ok(workdir: Path) -> None:
    code, out, err = verify_export(workdir, "a.json")
    assert code == 0 and out.startswith("ok: ") and "verify" in out, err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("passwd", "root:x:0:0:root:/root:/bin/bash\n", "not a json or ndjson audit export"),
        ("empty.ndjson", "", "the file is empty, not an audit export"),
        ("a.csv", None, "a csv audit export, which cannot be verified"),
        ("t.json", 100, "the export ends early (truncated JSON)"),
        ("nonexist.json", None, "cannot read it: No such file or directory"),
    ],
    ids=["not-an-export", "empty", "csv", "truncated-json", "missing"],
)
def test_offline_verify_refuses_with_one_line_naming_the_file(
    workdir: Path, name: str, content: str | int | None, message: str
) -> None:
    if isinstance(content, str):
        (workdir / name).write_text(content)
    elif isinstance(content, int):
        (workdir / name).write_bytes((workdir / "a.json").read_bytes()[:content])
    code, out, err = verify_export(workdir, name)
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"error: {name}: {message}")
    assert "unexpected" not in err and "Traceback" not in err


def test_export_onto_an_existing_0644_file_leaves_it_0600(workdir: Path) -> None:
    target = workdir / "shared.json"
    target.write_text("old\n")
    target.chmod(0o644)
    bastion(["audit", "export", "-o", "shared.json"], cwd=workdir)
    assert target.stat().st_mode & 0o777 == 0o600
    assert verify_export(workdir, "shared.json")[0] == 0
    assert not [p for p in workdir.iterdir() if p.name.endswith(".tmp")]


def test_export_into_a_missing_directory_is_one_line_naming_it(workdir: Path) -> None:
    result = bastion(["audit", "export", "-o", "/nonexistent/dir/x"], cwd=workdir, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "error: cannot write /nonexistent/dir/x: No such file or directory\n"


def test_export_of_a_cut_trail_exits_1_and_leaves_the_old_file(tmp_path: Path) -> None:
    """The newest event deleted below bastion, its checkpoint left: `verify` says truncated,
    so the export signs nothing, and the file it was to replace is left as it was."""
    bastion(["init"], cwd=tmp_path)
    bastion(["audit", "checkpoint"], cwd=tmp_path)
    with sqlite3.connect(tmp_path / "bastion.db") as db:
        db.execute("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
    db.close()
    (tmp_path / "a.ndjson").write_text("older export\n")
    verified = bastion(["audit", "verify"], cwd=tmp_path, check=False)
    result = bastion(
        ["audit", "export", "--format", "ndjson", "-o", "a.ndjson"], cwd=tmp_path, check=False
    )
    assert verified.returncode == result.returncode == 1 and "truncated" in verified.stderr
    [line] = result.stderr.splitlines()
    assert line == verified.stderr.strip() + "; nothing exported"
    assert (tmp_path / "a.ndjson").read_text() == "older export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "a.ndjson" in p.name) == ["a.ndjson"]


def test_offline_verify_names_the_line_with_a_duplicate_key(workdir: Path) -> None:
    lines = (workdir / "a.json").read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if '"seq":2,"prevHash"' in line)
    lines[number] = lines[number].replace('"tenant":', '"tenant":"x","tenant":', 1)
    (workdir / "dup.json").write_text("\n".join(lines) + "\n")
    code, out, err = verify_export(workdir, "dup.json")
    assert code == 1 and out == ""
    assert err.strip() == (
        "error: the audit trail does not verify: first broken seq 2: dup.json:"
        f" line {number + 1}: the key 'tenant' appears twice in one object (RFC 8785 forbids it)"
    )


def test_a_command_seals_the_events_it_records(tmp_path: Path) -> None:
    """No sealer runs after a command: what ``init`` and ``auth create-key`` record is sealed
    before they exit, so it never waits for a `bastion serve` that may not come."""
    bastion(["init"], cwd=tmp_path)
    bastion(["auth", "create-key", "--name", "ci", "--scopes", "patterns:read"], cwd=tmp_path)
    status = json.loads(bastion(["audit", "status", "--json"], cwd=tmp_path).stdout)
    assert status["unsealed"] == 0 and status["lastCheckpoint"]["seq"] == status["headSeq"]


class March:
    """A clock stopped long before the test runs."""

    def now(self) -> datetime:
        return datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_a_tail_whose_checkpoints_were_removed_long_ago_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    """Recorded in March: events 1-6, sealed at 1 and, by the idle sealer,
    at 6. The checkpoint at 6 deleted, event 4 edited and 4-6 re-hashed: five unsealed
    events, far fewer than ``every``, but far older than a running bastion leaves them."""
    document = {
        "storage": {"url": f"sqlite:///{tmp_path / 'bastion.db'}"},
        "security": {"pepper": f"file:{tmp_path / 'pepper'}"},
    }
    (tmp_path / "pepper").write_text("cli-stale-tail-pepper-" + "p" * 40 + "\n")
    (tmp_path / "bastion.yaml").write_text(yaml.safe_dump(document))
    services = build_services(load_config(tmp_path / "bastion.yaml"), clock=March())
    services.storage.migrate()
    for n in range(6):
        with services.storage.transaction() as tx:
            event = build_event(
                action="pattern.read",
                outcome="success",
                tenant="default",
                now=services.clock.now(),
                details={"n": n},
            )
            append_events(tx, [event])
    with services.storage.transaction() as tx:
        tx.audit.seal_now()  # type: ignore[attr-defined]
    tamper = Tamper(services.storage, document["storage"]["url"])
    tamper.delete_checkpoints(from_seq=2)
    tamper.rehash_from(4, lambda e: replace(e, details={"n": -1}))
    tamper.close()
    services.storage.close()
    verified = bastion(["audit", "verify"], cwd=tmp_path, check=False)
    export = ["audit", "export", "--format", "ndjson", "-o", "a.ndjson"]
    exported = bastion(export, cwd=tmp_path, check=False)
    assert verified.returncode == exported.returncode == 1
    assert verified.stdout == exported.stdout == ""
    [line] = verified.stderr.splitlines()
    assert line.startswith("error: the audit trail does not verify: first broken seq 2: ")
    assert "waited for a checkpoint" in line and "stopped before sealing" in line
    assert exported.stderr.splitlines() == [line + "; nothing exported"]
    assert not (tmp_path / "a.ndjson").exists()
