"""``bastion authz rule`` as an operator runs it: the same service call and audit as the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.procs import bastion

CONFIGURED_RULE = """
  rbac:
    resourceRules:
      - resource: patterns/from-config
        allowedRoles: [admin]
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rules")
    bastion(["init"], cwd=directory)
    config = directory / "bastion.yaml"
    config.write_text(config.read_text() + CONFIGURED_RULE)
    return directory


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_rule_create_enforces_lists_audits_and_deletes(workdir: Path) -> None:
    check = ["authz", "check", "-p", "admin@example.com", "-a", "execute", "-r", "patterns/vault"]
    assert bastion(check, cwd=workdir).stdout.strip() == "allow"
    bastion(["user", "create", "alice@example.com"], cwd=workdir)

    created = bastion(
        [
            *("authz", "rule", "create", "patterns/vault"),
            *("--user", "Alice@Example.com", "--role", "viewer", "--action", "execute"),
        ],
        cwd=workdir,
    )
    rule_id = created.stdout.split()[2]
    assert created.stdout.strip() == f"created rule {rule_id} on patterns/vault"

    denied = bastion(check, cwd=workdir, check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "deny")

    listed = _json_lines(bastion(["authz", "rule", "list", "--json"], cwd=workdir).stdout)
    assert {
        "id": rule_id,
        "source": "stored",
        "resource": "patterns/vault",
        "allowedUsers": ["alice@example.com"],
        "allowedRoles": ["viewer"],
        "actions": ["execute"],
    } in listed
    assert {
        "id": "security.rbac.resourceRules[0]",
        "source": "config",
        "resource": "patterns/from-config",
        "allowedUsers": [],
        "allowedRoles": ["admin"],
        "actions": [],
    } in listed
    by_resource = bastion(["authz", "rule", "show", "patterns/vault", "--json"], cwd=workdir)
    by_id = bastion(["authz", "rule", "show", rule_id, "--json"], cwd=workdir)
    assert by_resource.stdout == by_id.stdout
    assert [row["id"] for row in _json_lines(by_id.stdout)] == [rule_id]

    deleted = bastion(["authz", "rule", "delete", "patterns/vault"], cwd=workdir)
    assert deleted.stdout.strip() == f"deleted rule {rule_id} on patterns/vault"
    assert bastion(check, cwd=workdir).stdout.strip() == "allow"

    audit = bastion(["audit", "list", "--resource", f"rule/{rule_id}", "--json"], cwd=workdir)
    events = _json_lines(audit.stdout)
    assert [e["action"] for e in events] == ["rule.create", "rule.delete"]
    create_event = events[0]
    assert create_event["outcome"] == "success"
    assert create_event["tenant"] == "default"
    assert create_event["actor"] == {
        "id": create_event["actor"]["id"],  # type: ignore[index]
        "type": "operator",
        "via": "cli",
    }
    assert create_event["details"] == {
        "resource": "patterns/vault",
        "allowedUsers": ["alice@example.com"],
        "allowedRoles": ["viewer"],
        "actions": ["execute"],
    }
    assert events[1]["details"] == {"resource": "patterns/vault"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--tenant", "nowhere"], "error: no tenant 'nowhere'"),
        (["create", "patterns/x", "--user", "a", "--tenant", "nowhere"], "error: no tenant"),
        (["show", "patterns/nothing"], "error: no rule for patterns/nothing in tenant 'default'"),
        (["show", "rul_missing"], "error: no rule 'rul_missing' in tenant 'default'"),
        (["delete", "patterns/nothing"], "error: no rule for patterns/nothing in tenant"),
        (
            ["create", "not-a-resource", "--user", "a"],
            "error: 'not-a-resource' is not a resource of the form type/id",
        ),
        (
            ["create", "patterns/x", "--user", "Nobody@Example.com"],
            "error: no user 'nobody@example.com' in tenant 'default'"
            " (create it before naming it in a resource rule)",
        ),
        (["create", "patterns/x", "--role", "no-such-role"], "error: unknown role no-such-role"),
        (
            ["delete", "patterns/from-config"],
            "error: rule security.rbac.resourceRules[0] is in bastion.yaml; change it there",
        ),
    ],
)
def test_rule_errors_are_one_line_and_exit_1(workdir: Path, args: list[str], message: str) -> None:
    result = bastion(["authz", "rule", *args], cwd=workdir, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_second_rule_on_one_instance_is_refused_and_not_audited(workdir: Path) -> None:
    first = bastion(["authz", "rule", "create", "patterns/twice", "--role", "admin"], cwd=workdir)
    rule_id = first.stdout.split()[2]
    again = bastion(
        ["authz", "rule", "create", "patterns/twice", "--user", "bob"], cwd=workdir, check=False
    )
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: patterns/twice already has rule {rule_id}"
        " (one rule per resource instance; delete it first)"
    )
    audit = bastion(["audit", "list", "--action", "rule.create", "--json"], cwd=workdir)
    on_instance = [
        e["resource"]
        for e in _json_lines(audit.stdout)
        if e["details"]
        == {
            "resource": "patterns/twice",
            "allowedUsers": [],
            "allowedRoles": ["admin"],
            "actions": [],
        }
        or "bob" in json.dumps(e["details"])
    ]
    assert on_instance == [{"type": "rule", "id": rule_id}]
