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
        (["auth", "create-key", "--name", "x", "--scopes", "admin", "--owner", "ghost"], "error: "),
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
