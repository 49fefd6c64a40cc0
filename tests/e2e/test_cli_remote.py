"""The CLI in remote mode against a real `bastion serve` on loopback: `bastion login` with a
password, then administrative commands through the admin API from a directory with no
bastion.yaml, audited as the logged-in user; the stored login holds no password and no access
token, and a replayed refresh token ends the login with a clear line."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e import procs
from tests.e2e.test_identity_e2e import start, write_config
from tests.e2e.test_mtls_e2e import Authority

pytestmark = pytest.mark.e2e
PASSWORD = "Remote-Operator-7-Lantern"
OPERATOR = "ops@example.com"


@dataclass
class Remote:
    base: str
    server_dir: Path
    home: Path

    @property
    def stored(self) -> Path:
        return self.home / "config" / "bastion" / "credentials.json"

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI as the operator's terminal runs it: its own HOME, no bastion.yaml near."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env |= {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / "config")}
        return subprocess.run(
            [sys.executable, "-m", "bastion", *args],
            cwd=self.home,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"bastion {' '.join(args)}: {result.stderr}"
        return result.stdout

    def on_server(self, *args: str) -> str:
        return on_server(self.server_dir, *args)

    def login(self) -> None:
        login = ("login", "--server", self.base, "--user", OPERATOR, "--password-stdin")
        self.ok(*login, stdin=PASSWORD + "\n")


def on_server(server_dir: Path, *args: str, stdin: str | None = None) -> str:
    """A local command on the server's own configuration and database (explicit --config)."""
    config = str(server_dir / "bastion.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "--config", config, *args],
        cwd=server_dir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"bastion {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    server_dir = tmp_path_factory.mktemp("remote-server")
    port = procs.free_port()
    write_config(server_dir, storage={"url": f"sqlite:///{server_dir / 'bastion.db'}"}, port=port)
    on_server(server_dir, "init")
    on_server(server_dir, "user", "create", OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")
    on_server(server_dir, "role", "bind", "admin", "--user", OPERATOR)
    running = start(server_dir, port, "bastion.log")
    home = tmp_path_factory.mktemp("operator-home")
    try:
        yield Remote(running.base, server_dir, home)
    finally:
        procs.stop(running.process)


def _events(remote: Remote, action: str, *, after: int = 0) -> list[dict[str, Any]]:
    query = ("--action", action, "--after", str(after), "--limit", "100000", "--json")
    return [json.loads(line) for line in remote.on_server("audit", "list", *query).splitlines()]


def _head(remote: Remote) -> int:
    events = remote.on_server("audit", "list", "--limit", "100000", "--json").splitlines()
    return int(json.loads(events[-1])["seq"]) if events else 0


def test_admin_commands_run_remotely_as_the_logged_in_user(remote: Remote) -> None:
    remote.login()
    start_seq = _head(remote)
    assert "default" in remote.ok("tenant", "list")
    created = json.loads(
        remote.ok("user", "create", "Bob@Example.com", "--password-stdin", stdin=PASSWORD + "\n")
    )
    assert created["name"] == "bob@example.com" and created["groups"] == []
    listed = [json.loads(line) for line in remote.ok("user", "list", "--json").splitlines()]
    assert {OPERATOR, "bob@example.com"} <= {u["name"] for u in listed}
    assert json.loads(remote.ok("user", "disable", "bob@example.com"))["disabled"] is True
    remote.ok("group", "create", "ops")
    assert "added bob@example.com" in remote.ok("group", "add-member", "ops", "bob@example.com")
    assert json.loads(remote.ok("user", "show", "bob@example.com"))["groups"] == ["ops"]
    account = json.loads(remote.ok("service-account", "create", "ci"))
    assert account["kind"] == "serviceAccount"
    registration = remote.ok("agent", "create-token", "--capabilities", "classification")
    assert registration.startswith("bat_")
    tokens = [json.loads(line) for line in remote.ok("agent", "list-tokens", "--json").splitlines()]
    assert [t["state"] for t in tokens] == ["unused"]
    assert tokens[0]["id"] in remote.ok("agent", "revoke-token", tokens[0]["id"])

    secret = remote.ok("auth", "create-key", "--name", "ci-key", "--scopes", "patterns:read")
    assert secret.startswith("bk_live_")
    keys = [json.loads(line) for line in remote.ok("auth", "list-keys", "--json").splitlines()]
    mine = next(k for k in keys if k["name"] == "ci-key")
    assert mine["owner"] == OPERATOR and mine["active"] is True
    assert mine["state"] == "active"
    rotated = remote.ok("auth", "rotate-key", mine["id"], "--grace", "1h")
    assert rotated.startswith("bk_live_") and rotated != secret
    assert "revoked" in remote.ok("auth", "revoke-key", mine["id"])
    leaked = remote.ok("auth", "create-key", "--name", "leaked", "--scopes", "patterns:read")
    assert "(leaked)" in remote.ok("auth", "revoke-key", leaked.strip())  # pasted as found
    typo = remote.run("auth", "revoke-key", leaked.strip()[:-1] + "x")
    assert typo.returncode != 0 and "checksum" in typo.stderr and leaked[:20] not in typo.stderr

    assert remote.ok("authz", "check", "-p", OPERATOR, "-a", "read", "-r", "users").strip() == (
        "allow"
    )
    denied = remote.run("authz", "explain", "-p", "bob@example.com", "-a", "delete", "-r", "users")
    assert denied.returncode == 1 and "DENY" in denied.stdout and "rbac" in denied.stdout
    assert "deleted user bob@example.com" in remote.ok("user", "delete", "bob@example.com")

    changes = ("user.create", "user.disable", "group.create", "apikey.create", "user.delete")
    for action in (*changes, "agent.token.create"):
        events = _events(remote, action, after=start_seq)
        assert events, action
        assert {(e["actor"]["id"], e["actor"]["via"]) for e in events} == {(OPERATOR, "api")}
    remote_list = remote.ok("audit", "list", "--action", "user.delete", "--json").splitlines()
    assert json.loads(remote_list[-1])["resource"] == {"type": "user", "id": "bob@example.com"}


def test_roles_bindings_rules_and_signing_keys_run_remotely(remote: Remote) -> None:
    remote.login()
    start_seq = _head(remote)
    created = remote.ok("role", "create", "reader", "--permission", "patterns:read")
    assert created.strip() == "created role reader"
    updated = remote.ok("role", "update", "reader", "--permission", "executions:read")
    assert updated.strip() == "updated role reader"
    roles = [json.loads(line) for line in remote.ok("role", "list", "--json").splitlines()]
    reader = next(r for r in roles if r["name"] == "reader")
    assert (reader["source"], reader["permissions"]) == ("custom", ["executions:read"])
    assert remote.ok("role", "list", "--json") == remote.on_server("role", "list", "--json")

    remote.ok("group", "create", "readers")
    bound = remote.ok("role", "bind", "reader", "--group", "readers", "--expires", "8h")
    binding_id = bound.split()[2].rstrip(":")
    assert bound.strip() == f"created binding {binding_id}: group readers → reader"
    table = remote.ok("role", "bindings")
    assert binding_id in table and "active" in table
    assert table == remote.on_server("role", "bindings")
    assert remote.ok("role", "unbind", binding_id).strip() == f"removed binding {binding_id}"
    assert binding_id not in remote.on_server("role", "bindings")
    assert remote.ok("role", "delete", "reader").strip() == "deleted role reader"

    remote.ok("user", "create", "alice@example.com")
    rule = ("authz", "rule", "create", "patterns/vault", "--user", "Alice@Example.com")
    created = remote.ok(*rule, "--action", "execute")
    rule_id = created.split()[2]
    assert created.strip() == f"created rule {rule_id} on patterns/vault"
    listed = remote.run("authz", "rule", "list", "--json")
    assert listed.returncode == 0 and "bastion.yaml are not visible remotely" in listed.stderr
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {
            "id": rule_id,
            "source": "stored",
            "resource": "patterns/vault",
            "allowedUsers": ["alice@example.com"],
            "allowedRoles": [],
            "actions": ["execute"],
        }
    ]
    assert listed.stdout == remote.on_server("authz", "rule", "list", "--json")
    shown = remote.ok("authz", "rule", "show", "patterns/vault", "--json")
    assert json.loads(shown)["id"] == rule_id
    deleted = remote.ok("authz", "rule", "delete", "patterns/vault")
    assert deleted.strip() == f"deleted rule {rule_id} on patterns/vault"
    assert rule_id not in remote.on_server("authz", "rule", "list")

    rotated = remote.ok("token", "rotate-signing-key", "--algorithm", "ES256")
    kid = rotated.split()[3]
    assert rotated.strip() == f"new signing key {kid} (ES256)"
    keys = remote.ok("token", "list-signing-keys")
    assert kid in keys and keys == remote.on_server("token", "list-signing-keys")

    changes = ("role.create", "role.update", "role.delete", "binding.create", "binding.delete")
    for action in (*changes, "rule.create", "rule.delete", "signingkey.rotate"):
        events = _events(remote, action, after=start_seq)
        assert events, action
        assert {(e["actor"]["id"], e["actor"]["via"]) for e in events} == {(OPERATOR, "api")}


def test_role_rule_and_signing_key_errors_are_one_line(remote: Remote) -> None:
    remote.login()
    cases = {
        ("role", "bind", "no-such-role", "--user", OPERATOR): "unknown role no-such-role",
        ("role", "update", "admin", "--permission", "users:read"): "Not found",
        ("authz", "rule", "create", "vault", "--user", OPERATOR): "not a resource of the form",
        ("authz", "rule", "create", "patterns/x", "--user", "nobody"): "create it before naming",
        ("authz", "rule", "delete", "rul_missing"): "not visible remotely",
        ("token", "rotate-signing-key", "--algorithm", "HS256"): "algorithm: must be 'RS256'",
    }
    for args, expected in cases.items():
        result = remote.run(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("error: ") and expected in result.stderr, args
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    other_tenant = remote.run("role", "bindings", "--tenant", "elsewhere")
    assert other_tenant.returncode == 2 and "--tenant elsewhere" in other_tenant.stderr


def test_stored_login_is_private_and_holds_only_the_refresh_token(remote: Remote) -> None:
    remote.login()
    remote.ok("user", "list")
    assert stat.S_IMODE(remote.stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(remote.stored.parent.stat().st_mode) == 0o700
    document = json.loads(remote.stored.read_text())
    assert document["refreshToken"].startswith("brt_")
    assert set(document) == {"server", "prefix", "tenant", "username", "refreshToken"}
    for path in remote.home.rglob("*"):
        if path.is_file():
            data = path.read_text(errors="replace")
            assert PASSWORD not in data, path
            assert "eyJ" not in data, f"an access token was written to {path}"


def test_stored_login_others_could_read_or_swap_is_refused(remote: Remote) -> None:
    def refused(result: subprocess.CompletedProcess[str], path: Path, fix: str) -> bool:
        return result.returncode == 1 and result.stderr.strip() == (
            f"error: {path} must belong to you and be private ({fix} {path});"
            " bastion keeps no login in it as it is"
        )

    remote.login()
    remote.stored.chmod(0o644)
    assert refused(remote.run("user", "list"), remote.stored, "chmod 600")
    remote.login()  # a new login writes a new, private file
    assert stat.S_IMODE(remote.stored.stat().st_mode) == 0o600
    directory = remote.stored.parent
    directory.chmod(0o755)
    try:
        assert refused(remote.run("user", "list"), directory, "chmod 700")
        login = ("login", "--server", remote.base, "--user", OPERATOR, "--password-stdin")
        assert refused(remote.run(*login, stdin=PASSWORD + "\n"), directory, "chmod 700")
    finally:
        directory.chmod(0o700)


def test_replayed_refresh_token_ends_the_login_with_a_clear_line(remote: Remote) -> None:
    remote.login()
    used = remote.stored.read_text()
    remote.ok("user", "list")  # rotates: the token in `used` is spent
    remote.stored.write_text(used)
    replayed = remote.run("user", "list")
    assert replayed.returncode == 1
    assert "run `bastion login` again" in replayed.stderr
    assert "Traceback" not in replayed.stderr and len(replayed.stderr.splitlines()) == 1
    reuse = _events(remote, "token.refresh")
    assert any(e["details"].get("reason") == "refresh_token_reuse" for e in reuse)


def test_command_without_an_api_counterpart_exits_2(remote: Remote) -> None:
    remote.login()
    result = remote.run("audit", "checkpoint")
    assert result.returncode == 2
    assert "`bastion audit checkpoint` has no remote form" in result.stderr
    other_tenant = remote.run("user", "list", "--tenant", "elsewhere")
    assert other_tenant.returncode == 2 and "--tenant elsewhere" in other_tenant.stderr


def test_server_errors_and_refused_connections_are_one_line(remote: Remote) -> None:
    remote.login()
    missing = remote.run("user", "show", "nobody@example.com")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ") and len(missing.stderr.splitlines()) == 1
    document = json.loads(remote.stored.read_text())
    remote.stored.write_text(
        json.dumps({**document, "server": f"http://127.0.0.1:{procs.free_port()}"})
    )
    refused = remote.run("user", "list")
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("connection refused")


def test_logout_revokes_the_refresh_token_on_the_server(remote: Remote) -> None:
    remote.login()
    token = json.loads(remote.stored.read_text())["refreshToken"]
    assert remote.ok("logout").strip() == "logged out"
    assert not remote.stored.exists()
    stored = {"server": remote.base, "prefix": "/_bastion", "refreshToken": token}
    remote.stored.write_text(json.dumps({**stored, "tenant": "default", "username": OPERATOR}))
    remote.stored.chmod(0o600)
    after = remote.run("user", "list")
    assert after.returncode == 1 and "run `bastion login` again" in after.stderr


@pytest.fixture(scope="module")
def tls_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Remote, Path]]:
    """A bastion serving HTTPS with a certificate from a private CA the system does not trust."""
    server_dir = tmp_path_factory.mktemp("remote-tls-server")
    ca = Authority(server_dir, "private-ca")
    server = ca.issue("server", "bastion.test", server=True)
    port = procs.free_port()
    write_config(server_dir, storage={"url": f"sqlite:///{server_dir / 'bastion.db'}"}, port=port)
    document = yaml.safe_load((server_dir / "bastion.yaml").read_text())
    document["security"]["mtls"] = {
        "enabled": True,
        "serverCert": str(server.cert),
        "serverKey": str(server.key),
        "clientAuth": "none",
    }
    (server_dir / "bastion.yaml").write_text(yaml.safe_dump(document))
    on_server(server_dir, "init")
    on_server(server_dir, "user", "create", OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")
    on_server(server_dir, "role", "bind", "admin", "--user", OPERATOR)
    log = server_dir / "bastion.log"
    process = procs.start(["bastion", "serve"], cwd=server_dir, log=log)
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(ca.issued.cert))
    try:
        _wait_https(base + "/_bastion/health", trust, process=process, log=log)
        yield Remote(base, server_dir, tmp_path_factory.mktemp("tls-home")), ca.issued.cert
    finally:
        procs.stop(process)


def _wait_https(
    url: str, trust: ssl.SSLContext, *, process: subprocess.Popen[bytes], log: Path
) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"bastion exited early:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, verify=trust, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


def test_tls_is_verified_and_a_private_ca_is_given_with_ca_file(
    tls_remote: tuple[Remote, Path],
) -> None:
    remote, ca_file = tls_remote
    login = ("login", "--server", remote.base, "--user", OPERATOR, "--password-stdin")
    untrusted = remote.run(*login, stdin=PASSWORD + "\n")
    assert untrusted.returncode == 1
    assert "not trusted" in untrusted.stderr and "--ca-file" in untrusted.stderr
    assert len(untrusted.stderr.splitlines()) == 1 and not remote.stored.exists()

    remote.ok(*login, "--ca-file", str(ca_file), stdin=PASSWORD + "\n")
    assert json.loads(remote.stored.read_text())["caFile"] == str(ca_file.resolve())
    assert OPERATOR in remote.ok("user", "list")
    assert OPERATOR in remote.ok("--server", remote.base, "--ca-file", str(ca_file), "user", "list")


def test_a_bastion_yaml_in_the_working_directory_wins_over_the_stored_login(
    remote: Remote,
) -> None:
    """An operator on a server host, logged in to another bastion, works on the local one."""
    remote.login()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env |= {"HOME": str(remote.home), "XDG_CONFIG_HOME": str(remote.home / "config")}
    local = remote.home / "local-bastion"
    local.mkdir(exist_ok=True)
    write_config(
        local, storage={"url": f"sqlite:///{local / 'bastion.db'}"}, port=procs.free_port()
    )

    def here(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bastion", *args],
            cwd=local,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    assert here("init").returncode == 0
    created = here("tenant", "create", "only-here")
    assert created.returncode == 0, created.stderr
    assert "only-here" not in remote.on_server("tenant", "list")
    assert "only-here" in here("tenant", "list").stdout


class _Front(http.server.BaseHTTPRequestHandler):
    """A proxy in front of bastion that passes POSTs on and redirects every GET elsewhere."""

    upstream = ""
    elsewhere = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        answer = httpx.post(self.upstream + self.path, content=body, headers=headers, timeout=30)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.elsewhere + "/collect")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Collector(http.server.BaseHTTPRequestHandler):
    """Another host: records every request that reaches it."""

    seen: list[tuple[str, str | None]] = []

    def _record(self) -> None:
        self.seen.append((self.command, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    do_GET = do_POST = _record

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_redirect_never_carries_the_token_or_password_to_another_host(remote: Remote) -> None:
    _Collector.seen = []
    with _serving(_Collector) as elsewhere, _serving(_Front) as front:
        _Front.upstream, _Front.elsewhere = remote.base, elsewhere
        login = ("login", "--server", front, "--user", OPERATOR, "--password-stdin")
        remote.ok(*login, stdin=PASSWORD + "\n")  # the POSTs pass through to bastion
        listed = remote.run("user", "list")  # the GET is redirected to the other host
        whoami = remote.run("whoami")
    for result in (listed, whoami):
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert f"answered 302 redirecting to {elsewhere}/collect" in line
        assert "follows no redirect" in line
    assert _Collector.seen == []


def test_login_refuses_other_schemes_and_warns_before_sending_a_password_in_clear(
    remote: Remote,
) -> None:
    for server in ("ftp://127.0.0.1:1", "file:///etc/passwd", "https://user@example.com"):
        result = remote.run("login", "--server", server, "--user", OPERATOR, "--password-stdin")
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert line.startswith("error: --server ")
    with_ca = remote.run(
        "login", "--server", remote.base, "--user", OPERATOR, "--ca-file", "ca.pem",
        "--password-stdin",
    )  # fmt: skip
    assert with_ca.stderr.strip() == "error: --ca-file applies to an https:// server only"
    loopback = remote.run("login", "--server", remote.base, "--user", OPERATOR, "--password-stdin",
                          stdin=PASSWORD + "\n")  # fmt: skip
    assert loopback.returncode == 0 and "warning" not in loopback.stderr
    unreachable = f"http://192.0.2.1:{procs.free_port()}"  # TEST-NET-1: nothing answers
    remote_host = remote.run(
        "login", "--server", unreachable, "--user", OPERATOR, "--password-stdin",
        stdin="x\n",
    )  # fmt: skip
    assert remote_host.stderr.startswith(f"warning: {unreachable} is plain http")
