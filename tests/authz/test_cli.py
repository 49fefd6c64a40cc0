"""``bastion role`` and ``bastion authz check|explain|test`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.procs import bastion

CASES = """
cases:
  - name: the admin may delete
    principal: admin@example.com
    action: delete
    resource: patterns/x
    expect: allow
  - name: a narrowed credential may not
    principal: admin@example.com
    action: delete
    resource: patterns/x
    scopes: [patterns:read]
    expect: deny
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    bastion(["init"], cwd=tmp_path)
    return tmp_path


def test_check_exit_status_follows_the_decision(workdir: Path) -> None:
    allowed = bastion(
        ["authz", "check", "-p", "admin@example.com", "-a", "delete", "-r", "patterns/x"],
        cwd=workdir,
    )
    assert allowed.stdout.strip() == "allow"
    denied = bastion(
        [
            "authz",
            "check",
            "-p",
            "admin@example.com",
            "-a",
            "delete",
            "-r",
            "patterns/x",
            "--scopes",
            "patterns:read",
        ],
        cwd=workdir,
        check=False,
    )
    assert (denied.returncode, denied.stdout.strip()) == (1, "deny")


def test_explain_prints_the_stages_as_a_tree(workdir: Path) -> None:
    result = bastion(
        [
            "authz",
            "explain",
            "-p",
            "admin@example.com",
            "-a",
            "read",
            "-r",
            "patterns",
            "--scopes",
            "agents:read",
        ],
        cwd=workdir,
        check=False,
    )
    assert result.returncode == 1
    assert "DENY" in result.stdout
    assert "├── rbac: pass" in result.stdout
    assert "scopes: FAIL" in result.stdout
    assert "credential scopes do not include patterns:read" in result.stdout


def test_authz_test_passes_and_fails_like_ci_expects(workdir: Path) -> None:
    (workdir / "cases.yaml").write_text(CASES)
    ok = bastion(["authz", "test", "cases.yaml"], cwd=workdir)
    assert "2 passed, 0 failed" in ok.stdout
    (workdir / "wrong.yaml").write_text(CASES.replace("expect: deny", "expect: allow"))
    bad = bastion(["authz", "test", "cases.yaml", "wrong.yaml"], cwd=workdir, check=False)
    assert bad.returncode == 1
    assert "FAIL wrong.yaml: a narrowed credential may not: expected allow, got deny" in bad.stdout
    assert "3 passed, 1 failed" in bad.stdout


def test_authz_test_reports_a_malformed_file_with_its_key_path(workdir: Path) -> None:
    (workdir / "bad.yaml").write_text("cases:\n  - principal: a\n    expect: maybe\n")
    result = bastion(["authz", "test", "bad.yaml"], cwd=workdir, check=False)
    assert result.returncode == 1
    assert "cases[0].expect" in result.stderr
    assert "Traceback" not in result.stderr


def test_role_commands_and_cycle_error(workdir: Path) -> None:
    bastion(
        ["role", "create", "auditor", "--permission", "audit:read", "--inherits", "viewer"],
        cwd=workdir,
    )
    bastion(["role", "create", "lead", "--inherits", "auditor"], cwd=workdir)
    cycle = bastion(["role", "update", "auditor", "--inherits", "lead"], cwd=workdir, check=False)
    assert cycle.returncode == 1
    assert cycle.stderr.strip() == "error: inheritance cycle lead -> auditor -> lead"
    bastion(["group", "create", "Audit"], cwd=workdir)
    bound = bastion(["role", "bind", "lead", "--group", "Audit", "--expires", "1h"], cwd=workdir)
    assert "group audit → lead" in bound.stdout
    listed = bastion(["role", "list", "--json"], cwd=workdir)
    assert '"name": "lead", "source": "custom"' in listed.stdout
    binding_id = bound.stdout.split()[2].rstrip(":")
    bastion(["role", "unbind", binding_id], cwd=workdir)
    assert binding_id not in bastion(["role", "bindings"], cwd=workdir).stdout


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ("bad scope", "'bad scope' is not a permission of the form resource:action"),
        ("patterns:read,a:b:c", "'a:b:c' is not a permission of the form resource:action"),
        (" , ", "at least one scope is required (use 'admin' for full access)"),
    ],
)
def test_check_and_explain_read_scopes_as_a_credentials_in_one_line(
    workdir: Path, scopes: str, message: str
) -> None:
    ask = ["-p", "admin@example.com", "-a", "read", "-r", "patterns", "--scopes", scopes]
    for command in ("check", "explain"):
        result = bastion(["authz", command, *ask], cwd=workdir, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (
            f"error: invalid value for --scopes: {message} (see 'bastion authz {command} --help')"
        )


def test_role_create_holds_names_to_the_rules_and_says_the_name_saved(workdir: Path) -> None:
    created = bastion(["role", "create", " spaced ", "--permission", "patterns:read"], cwd=workdir)
    assert created.stdout.strip() == "created role spaced"
    for bad in ("a/b", "x\ty"):
        refused = bastion(["role", "create", bad], cwd=workdir, check=False)
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            "error: a role name must not contain control characters or slashes"
        )
    alike = bastion(["role", "create", "Viewer"], cwd=workdir, check=False)
    assert alike.stderr.strip() == "error: a role named viewer already exists"


def test_role_create_refuses_a_name_read_as_two_roles(workdir: Path) -> None:
    refused = bastion(["role", "create", "reader,admin"], cwd=workdir, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith(
        "error: a role name must not contain a comma or white space"
    )
    listed = bastion(["role", "list"], cwd=workdir).stdout
    assert "reader,admin" not in listed


PLATFORM_BINDING = """
  rbac:
    platformBindings:
      - subject: {type: user, name: admin@example.com}
        role: viewer
        targetTenants: [acme]
"""


def test_explain_names_the_platform_binding_that_crossed_tenants(tmp_path: Path) -> None:
    bastion(["init"], cwd=tmp_path)
    config = tmp_path / "bastion.yaml"
    config.write_text(config.read_text() + PLATFORM_BINDING)
    for tenant in ("acme", "other"):
        bastion(["tenant", "create", tenant], cwd=tmp_path)
    ask = ["authz", "explain", "-p", "admin@example.com", "-a", "read", "-r", "patterns/x"]

    allowed = bastion([*ask, "--target", "acme"], cwd=tmp_path)
    lines = [line.strip("│├└─ ") for line in allowed.stdout.splitlines()]
    assert lines[0].startswith("ALLOW  admin@example.com → read patterns/x (tenant acme")
    assert "tenant acme reached through security.rbac.platformBindings[0]" in lines
    assert (
        "platform binding: user admin@example.com of tenant default holds role viewer in acme"
        in lines
    )
    assert "role viewer grants patterns:read via security.rbac.platformBindings[0]" in lines

    denied = bastion([*ask, "--target", "other"], cwd=tmp_path, check=False)
    assert denied.returncode == 1
    assert "principal of tenant default has no platform binding for other" in denied.stdout
    assert "platform binding:" not in denied.stdout


def test_deleted_user_bindings_do_not_pass_to_a_new_user_of_the_same_name_cli(
    workdir: Path,
) -> None:
    bastion(["user", "create", "bob@example.com"], cwd=workdir)
    bound = bastion(["role", "bind", "admin", "--user", "bob@example.com"], cwd=workdir)
    binding_id = bound.stdout.split()[2].rstrip(":")
    bastion(["user", "delete", "bob@example.com"], cwd=workdir)
    assert binding_id not in bastion(["role", "bindings"], cwd=workdir).stdout
    bastion(["user", "create", "bob@example.com"], cwd=workdir)
    explained = bastion(
        ["authz", "explain", "-p", "bob@example.com", "-a", "delete", "-r", "users"],
        cwd=workdir,
        check=False,
    )
    assert explained.returncode == 1
    assert "DENY" in explained.stdout and binding_id not in explained.stdout


def test_binding_a_role_to_a_user_that_does_not_exist_is_refused_cli(workdir: Path) -> None:
    ghost = bastion(
        ["role", "bind", "admin", "--user", "ghost@example.com"], cwd=workdir, check=False
    )
    assert ghost.returncode == 1
    assert ghost.stderr.strip() == (
        "error: no user 'ghost@example.com' in tenant 'default'"
        " (create it before binding a role to it)"
    )
    assert "ghost@example.com" not in bastion(["role", "bindings"], cwd=workdir).stdout
