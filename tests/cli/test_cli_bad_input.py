"""Bad input to any command is one terminal-safe `error:` line and a non-zero exit: never a
traceback, never read as "not given", never a half-made change."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli.context import password_from_stdin
from tests.e2e.procs import bastion


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bad-input")
    bastion(["init"], cwd=directory)
    return directory


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def run_with_stdin(args: list[str], cwd: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    """The CLI with stdin "closed" (the shell's `<&-`), "empty" (/dev/null) or that text."""
    command = [sys.executable, "-m", "bastion", *args]
    if stdin == "closed":
        return subprocess.run(
            ["sh", "-c", 'exec "$@" <&-', "sh", *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
    if stdin == "empty":
        return subprocess.run(
            command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
        )
    return subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["user", "list", "--tenant", "   "], "--tenant"),
        (["auth", "create-key", "--name", "k", "--scopes", "admin", "--tenant", ""], "--tenant"),
        (["audit", "list", "--action", ""], "--action"),
        (["authz", "check", "-p", "admin@example.com", "-a", "", "-r", "patterns"], "--action"),
        (
            ["authz", "check", "-p", "admin@example.com", "-a", "read", "-r", "x", "--scopes", ""],
            "--scopes",
        ),
        (["token", "rotate-signing-key", "--algorithm", ""], "--algorithm"),
        (["--server", "", "user", "list"], "--server"),
        (["login", "--server", "http://127.0.0.1:1", "--user", " ", "--password-stdin"], "--user"),
    ],
)
def test_an_empty_value_is_refused_not_read_as_absent(
    initialised: Path, args: list[str], option: str
) -> None:
    result = bastion(args, cwd=initialised, check=False)
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith(f"error: invalid value for '{option}'")
    assert ": must not be empty (see 'bastion " in line


def test_a_display_name_may_still_be_cleared(initialised: Path) -> None:
    bastion(["tenant", "update", "default", "--display-name", ""], cwd=initialised)


@pytest.mark.parametrize(
    "name",
    ["a\nb", "\x1b[31mred\x1b[0m", "a\rb\x07", "x" * 50_000],
    ids=["nl", "ansi", "cr", "long"],
)
def test_an_echoed_value_stays_one_short_terminal_safe_line(initialised: Path, name: str) -> None:
    result = bastion(["authz", "rule", "show", name], cwd=initialised, check=False)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("error: no rule '")
    assert not any(ord(ch) < 32 for ch in line)
    assert len(line) < 1100


def test_an_argument_that_is_not_utf8_is_refused(initialised: Path) -> None:
    result = bastion(["user", "show", "caf\udce9"], cwd=initialised, check=False)  # b"caf\xe9"
    assert result.returncode == 2
    assert one_error_line(result) == "error: argument 'caf\\xe9' is not valid UTF-8"


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ("a/b", "error: a tenant name must not contain control characters or slashes"),
        ("a\nb", "error: a tenant name must not contain control characters or slashes"),
        ("x" * 300, "error: a tenant name must be 1 to 254 characters"),
    ],
    ids=["slash", "newline", "long"],
)
def test_init_holds_names_to_the_rules_of_tenant_create(
    initialised: Path, tenant: str, message: str
) -> None:
    result = bastion(["init", "--tenant", tenant], cwd=initialised, check=False)
    assert result.returncode == 1
    assert one_error_line(result) == message
    listed = bastion(["tenant", "list", "--json"], cwd=initialised)
    assert len(listed.stdout.splitlines()) == 1  # only the default tenant


def test_init_refuses_a_bad_admin_name(initialised: Path) -> None:
    result = bastion(["init", "--tenant", "t2", "--admin", "a\tb"], cwd=initialised, check=False)
    assert one_error_line(result) == (
        "error: a user name must not contain control characters or slashes"
    )
    assert "t2" not in bastion(["tenant", "list", "--json"], cwd=initialised).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--log-level", "loud"], "'--log-level': must be one of critical, error,"),
        (["serve", "--host", "a b"], "--host: must be an IP address or a host name"),
        (["serve", "--host", "a\nb"], "--host: must be an IP address or a host name"),
    ],
)
def test_serve_checks_its_options_before_starting(
    initialised: Path, args: list[str], message: str
) -> None:
    result = bastion(args, cwd=initialised, check=False)
    assert result.returncode == 2
    assert message.replace("'", "") in one_error_line(result).replace("'", "")


def test_serve_on_a_port_in_use_is_one_line(initialised: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = bastion(["serve", "--port", str(port)], cwd=initialised, check=False)
    assert result.returncode == 1
    assert one_error_line(result).startswith(f"error: cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    "args",
    [
        ["auth", "create-key", "--name", "far", "--scopes", "admin", "--expires", "100000000d"],
        ["role", "bind", "viewer", "--user", "admin@example.com", "--expires", "100000000d"],
    ],
)
def test_a_lifetime_past_the_year_9999_is_refused(initialised: Path, args: list[str]) -> None:
    result = bastion(args, cwd=initialised, check=False)
    assert result.returncode == 2
    assert "--expires: is out of range (the years 1 to 9999, in UTC)" in one_error_line(result)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ci\ndeploy", "error: a key name must not contain control characters or slashes"),
        ("ci\x1b[31m", "error: a key name must not contain control characters or slashes"),
        ("k" * 255, "error: a key name must be 1 to 254 characters"),
    ],
    ids=["newline", "ansi-escape", "long"],
)
def test_a_key_name_is_held_to_the_rules_of_every_name(
    initialised: Path, name: str, message: str
) -> None:
    result = bastion(
        ["auth", "create-key", "--name", name, "--scopes", "patterns:read"],
        cwd=initialised,
        check=False,
    )
    assert result.returncode == 1
    assert one_error_line(result) == message
    assert result.stdout == ""
    listed = bastion(["auth", "list-keys", "--json"], cwd=initialised).stdout.splitlines()
    assert [json.loads(line)["name"] for line in listed] == ["bootstrap-admin"]


def test_a_zero_ttl_is_refused_not_replaced_by_the_default(initialised: Path) -> None:
    args = ["agent", "create-token", "--capabilities", "patterns:read", "--ttl", "0"]
    result = bastion(args, cwd=initialised, check=False)
    assert result.returncode == 1
    assert one_error_line(result) == "error: the token lifetime must be between 1s and 30d"
    assert result.stdout == ""


@pytest.mark.parametrize("stdin", ["closed", "empty", "\n"])
@pytest.mark.parametrize(
    "args",
    [
        ["user", "create", "nopass", "--password-stdin"],
        ["user", "set-password", "admin@example.com", "--password-stdin"],
        ["login", "--server", "http://127.0.0.1:1", "--user", "a", "--password-stdin"],
    ],
)
def test_password_stdin_without_a_password_is_one_line(
    initialised: Path, args: list[str], stdin: str
) -> None:
    result = run_with_stdin(args, initialised, stdin)
    assert result.returncode == 1
    assert one_error_line(result) == (
        "error: --password-stdin found no password: give it as one line on stdin"
    )
    assert "nopass" not in bastion(["user", "list", "--json"], cwd=initialised).stdout


def test_a_password_prompt_needs_a_terminal(initialised: Path) -> None:
    result = run_with_stdin(["user", "set-password", "admin@example.com"], initialised, "empty")
    assert result.returncode == 1
    assert one_error_line(result) == (
        "error: cannot ask for a password: stdin is not a terminal (use --password-stdin)"
    )


def test_password_stdin_drops_a_windows_line_ending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Secretpw-12345!\r\nrest\n"))
    assert password_from_stdin() == "Secretpw-12345!"


def test_a_password_and_a_hash_together_are_refused(initialised: Path) -> None:
    args = ["user", "create", "both", "--password-stdin", "--password-hash", "$2b$04$x"]
    result = run_with_stdin(args, initialised, "Secretpw-12345!\n")
    assert result.returncode == 2
    assert "give at most one of --password, --password-stdin, --password-hash" in (
        one_error_line(result)
    )


def test_login_refuses_a_prefix_that_is_no_url_path(initialised: Path) -> None:
    args = ["login", "--server", "http://127.0.0.1:1", "--user", "a", "--prefix", "x\ny"]
    result = run_with_stdin([*args, "--password-stdin"], initialised, "pw\n")
    assert result.returncode == 1
    assert one_error_line(result) == "error: --prefix must be a URL path like /_bastion, not x\\ny"


def test_a_config_with_a_nul_byte_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bastion.yaml").write_bytes(b"storage:\n  url: sqlite:///./b.db\x00\n")
    result = bastion(["user", "list"], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert one_error_line(result) == (
        "error: bastion.yaml: character #x0000 at offset 32 is not allowed"
    )


def test_a_case_file_that_is_not_utf8_is_one_line(initialised: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_bytes(b"cases: \xff\xfe\n")
    result = bastion(["authz", "test", str(cases)], cwd=initialised, check=False)
    assert result.returncode == 1
    assert one_error_line(result) == f"error: {cases}: is not UTF-8 text"


def test_an_output_name_too_long_is_one_line(initialised: Path) -> None:
    result = bastion(["audit", "export", "-o", "x" * 5000], cwd=initialised, check=False)
    assert result.returncode == 1
    assert "File name too long" in one_error_line(result)


def test_validate_names_a_missing_file_on_one_line(tmp_path: Path) -> None:
    result = bastion(["config", "validate", "no\nfile.yaml"], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert one_error_line(result) == "error: no\\nfile.yaml does not exist"
