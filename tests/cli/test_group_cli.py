"""``bastion group`` prints one shape of a group whichever command shows it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.procs import bastion


def test_group_list_json_lines_are_what_group_show_prints(tmp_path: Path) -> None:
    bastion(["init"], cwd=tmp_path)
    bastion(["group", "create", "ops"], cwd=tmp_path)
    bastion(["group", "add-member", "ops", "admin@example.com"], cwd=tmp_path)
    shown = json.loads(bastion(["group", "show", "ops"], cwd=tmp_path).stdout)
    listed = bastion(["group", "list", "--json"], cwd=tmp_path).stdout.splitlines()
    assert [json.loads(line) for line in listed] == [shown]
    assert shown["members"] == [{"name": "admin@example.com", "kind": "user"}]
