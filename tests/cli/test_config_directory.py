"""``bastion -c /etc/bastion/bastion.yaml …`` run from another directory finds every file."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.procs import bastion

POLICY = """
@id("no-deletes")
forbid(principal, action == Action::"delete", resource is roles);
"""


def test_policies_database_and_pepper_come_from_the_config_directory(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    bastion(["init"], cwd=etc)  # storage sqlite:///./bastion.db, pepper file:bastion.pepper
    (etc / "policies").mkdir()
    (etc / "policies" / "main.cedar").write_text(POLICY)
    config = etc / "bastion.yaml"
    config.write_text(config.read_text() + "  policies:\n    files: [policies/main.cedar]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def check(action: str) -> tuple[int, str]:
        result = bastion(
            [
                *("-c", str(config), "authz", "explain"),
                *("-p", "admin@example.com", "-a", action, "-r", "roles/x"),
            ],
            cwd=elsewhere,
            check=False,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, result.stdout

    # The admin created by `init` is found: the database is etc/bastion.db, not ./bastion.db.
    assert check("read")[0] == 0
    # The policy named relative to bastion.yaml is loaded and applies.
    status, tree = check("delete")
    assert status == 1
    assert "cedar: FAIL" in tree
    assert "no-deletes" in tree
    assert list(elsewhere.iterdir()) == []
