"""``bastion audit list`` and ``prune`` read moments and sequence numbers as the admin API does:
a value no datetime or seq can hold is one line naming the option, never an overflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.core.audit import MAX_SEQ
from tests.e2e.procs import bastion


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-cli")
    bastion(["init"], cwd=path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "999999999d"],
            "invalid value for --since: is out of range (the years 1 to 9999, in UTC)",
        ),
        (["--since", "0001-01-01T00:00:00+01:00"], "invalid value for --since: is out of range"),
        (
            ["--since", "99999999999d"],
            "invalid value for --since: is too large (at most 999999999d)",
        ),
        (
            ["--since", "2026-01-01T00:00:00"],
            "invalid value for --since: must be a time with an offset",
        ),
        (["--after", str(MAX_SEQ + 1)], "invalid value for '--after'"),
        (["--after", "-1"], "invalid value for '--after'"),
    ],
)
def test_list_refuses_what_no_datetime_or_seq_holds_in_one_line(
    workdir: Path, args: list[str], message: str
) -> None:
    result = bastion(["audit", "list", *args], cwd=workdir, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr


def test_export_since_beyond_the_calendar_is_one_line(workdir: Path) -> None:
    result = bastion(["audit", "export", "--since", "999999999d"], cwd=workdir, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: invalid value for --since: is out of range (the years 1 to 9999, in UTC) "
        "(see 'bastion audit export --help')"
    ]


def test_list_reads_an_rfc_3339_since_as_the_admin_api_does(workdir: Path) -> None:
    every = bastion(["audit", "list", "--json", "--since", "0001-01-01T00:00:00Z"], cwd=workdir)
    recent = bastion(["audit", "list", "--json", "--since", "1h"], cwd=workdir)
    assert [json.loads(line)["seq"] for line in every.stdout.splitlines()]
    assert every.stdout == recent.stdout


def test_list_after_the_largest_seq_is_empty(workdir: Path) -> None:
    result = bastion(["audit", "list", "--json", "--after", str(MAX_SEQ)], cwd=workdir)
    assert result.stdout == ""


def test_prune_older_than_the_calendar_removes_nothing(workdir: Path) -> None:
    result = bastion(["audit", "prune", "--older-than", "999999999d"], cwd=workdir)
    assert result.stdout.strip() == "nothing to remove"
