"""``bastion group`` prints one shape of a group whichever command shows it, and ``bastion
user`` one shape of a user, with its groups."""

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


def test_user_list_carries_each_users_groups_as_user_show_does(tmp_path: Path) -> None:
    bastion(["init"], cwd=tmp_path)
    bastion(["group", "create", "ops"], cwd=tmp_path)
    bastion(["user", "create", "bob@example.com"], cwd=tmp_path)
    bastion(["group", "add-member", "ops", "admin@example.com"], cwd=tmp_path)
    listed = bastion(["user", "list", "--json"], cwd=tmp_path).stdout.splitlines()
    shown = [
        json.loads(bastion(["user", "show", name], cwd=tmp_path).stdout)
        for name in ("admin@example.com", "bob@example.com")
    ]
    assert [json.loads(line) for line in listed] == shown
    assert [user["groups"] for user in shown] == [["ops"], []]
    table = bastion(["user", "list"], cwd=tmp_path).stdout
    assert "Groups" in table and "ops" in table
    renamed = bastion(
        ["user", "update", "admin@example.com", "--display-name", "Admin"], cwd=tmp_path
    )
    assert json.loads(renamed.stdout)["groups"] == ["ops"]
