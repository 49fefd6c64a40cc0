"""CLI errors are one clear line and a non-zero exit, never a traceback or a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.procs import bastion


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    bastion(["init"], cwd=tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["auth", "revoke-key", "nope"], "error: no API key 'nope' in tenant 'default'"),
        (["auth", "create-key", "--name", "x", "--scopes", "nonsense"], "error: 'nonsense' is not"),
        (["auth", "create-key", "--name", "bootstrap-admin", "--scopes", "admin"], "error: "),
        (
            ["auth", "create-key", "--name", "x", "--scopes", "admin", "--owner", "ghost"],
            "error: no principal 'ghost' in tenant 'default'",
        ),
        (["init"], "error: tenant 'default' is already initialised"),
        (["audit", "list", "--since", "1x"], "must be a duration"),
        (["audit", "list", "--outcome", "denyed"], "must be one of success, failure, denied"),
        (["serve", "--port", "99999"], "--port': Input should be less than or equal to 65535"),
        (["serve", "--port", "0"], "--port': Input should be greater than or equal to 1"),
        (
            ["authz", "check", "-p", "admin", "-a", "read", "-r", "patterns", "--ip", "notanip"],
            "error: 'notanip' is not an IP address",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(
    workdir: Path, args: list[str], message: str
) -> None:
    result = bastion(args, cwd=workdir, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ([], ["tenant", "create", "acme"], "a tenant named acme already exists"),
        ([], ["user", "create", "Bob@Example.com"], "a user named bob@example.com already exists"),
        ([], ["service-account", "create", "ci"], "a service account named ci already exists"),
        ([], ["group", "create", "ops"], "a group named ops already exists"),
        (
            [],
            ["role", "create", "auditor", "--permission", "patterns:read"],
            "a role named auditor already exists",
        ),
        (
            [],
            ["auth", "create-key", "--name", "k", "--scopes", "admin"],
            "an API key named k already exists",
        ),
        (
            [["service-account", "create", "ci"]],
            ["auth", "create-key", "--name", "ci-secret", "--scopes", "admin", "--owner", "ci"],
            "an API key named ci-secret already exists",
        ),
        (
            [["user", "create", "bob@example.com"]],
            ["role", "bind", "viewer", "--user", "bob@example.com"],
            "user bob@example.com is already bound to role viewer",
        ),
    ],
)
def test_duplicate_create_says_what_already_exists(
    workdir: Path, setup: list[list[str]], args: list[str], message: str
) -> None:
    for step in [*setup, args]:
        bastion(step, cwd=workdir)
    again = bastion(args, cwd=workdir, check=False)
    assert again.returncode == 1
    assert again.stderr.splitlines() == [f"error: {message}"]


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised directory for commands that only look things up."""
    directory = tmp_path_factory.mktemp("initialised")
    bastion(["init"], cwd=directory)
    return directory


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "show", "ghost"], "no user 'ghost' in tenant 'default'"),
        (["user", "delete", "Ghost"], "no user 'ghost' in tenant 'default'"),
        (["service-account", "show", "ghost"], "no service account 'ghost' in tenant 'default'"),
        (["agent", "disable", "ghost"], "no agent 'ghost' in tenant 'default'"),
        (["group", "show", "nope"], "no group 'nope' in tenant 'default'"),
        (["group", "add-member", "nope", "ghost"], "no group 'nope' in tenant 'default'"),
        (["role", "delete", "ghost"], "no custom role 'ghost' in tenant 'default'"),
        (
            ["role", "update", "ghost", "--permission", "patterns:read"],
            "no custom role 'ghost' in tenant 'default'",
        ),
        (["role", "unbind", "bnd_missing"], "no binding 'bnd_missing' in tenant 'default'"),
        (["tenant", "show", "nowhere"], "no tenant 'nowhere'"),
        (
            ["agent", "revoke-token", "rtk_nope"],
            "no registration token 'rtk_nope' in tenant 'default'",
        ),
        (["user", "list", "--tenant", "nowhere"], "no tenant 'nowhere'"),
        (
            ["authz", "check", "-p", "ghost", "-a", "read", "-r", "patterns"],
            "no principal 'ghost' in tenant 'default'",
        ),
    ],
)
def test_missing_name_is_named_with_its_tenant(
    initialised: Path, args: list[str], message: str
) -> None:
    result = bastion(args, cwd=initialised, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {message}"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["user", "create"], "error: missing argument 'name' (see 'bastion user create --help')"),
        (["nosuch"], "error: no such command 'nosuch' (see 'bastion --help')"),
        (["audit", "list", "--since"], "error: option '--since' requires an argument"),
        (
            ["user", "list", "--bogus"],
            "error: no such option: --bogus (see 'bastion user list --help')",
        ),
    ],
)
def test_usage_errors_are_one_line(initialised: Path, args: list[str], line: str) -> None:
    result = bastion(args, cwd=initialised, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_a_command_group_alone_prints_its_help(initialised: Path) -> None:
    result = bastion(["user"], cwd=initialised, check=False)
    assert result.returncode == 2
    assert "Usage: bastion user" in result.stdout + result.stderr
    assert "create" in result.stdout + result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bastion.yaml").write_text(
        "storage:\n  url: postgresql+psycopg://nobody:hunter2-secret@127.0.0.1:1/none\n"
        "security:\n  pepper: " + "p" * 40 + "\n"
    )
    result = bastion(["migrate"], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2-secret" not in result.stderr


def test_invalid_config_lists_every_issue_with_its_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "security:\n  rateLimit:\n    global:\n      requestsPerSecond: 0\n"
        "      burstSize: 1\n  bogus: true\n"
    )
    result = bastion(["config", "validate", str(config)], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "security.rateLimit.global.requestsPerSecond: must be greater than 0",
        "security.bogus: unknown key",
    ]


def test_validate_lists_not_yet_enforced_keys(tmp_path: Path) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(
        "security:\n  pepper: " + "p" * 40 + "\n"
        "  gdpr:\n    enabled: true\n    consent:\n      required: true\n"
    )
    result = bastion(["config", "validate", str(config)], cwd=tmp_path, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == "ok"
    assert "warning: security.gdpr: not yet enforced" in result.stderr
