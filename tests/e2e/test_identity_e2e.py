"""Identity through real processes: the CLI, `bastion serve`, `bastion login`; revocation
across two replicas sharing PostgreSQL and Redis; and no secret at rest afterwards."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e import procs

pytestmark = pytest.mark.e2e
PASSWORD = "Correct-Horse-9-Battery"


@dataclass
class Server:
    base: str
    workdir: Path
    process: subprocess.Popen[bytes]
    secrets: list[str] = field(default_factory=list)

    def cli(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [os.environ.get("PYTHON", procs.sys.executable), "-m", "bastion", *args],
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )
        if result.returncode != 0:
            raise AssertionError(f"bastion {' '.join(args)} failed: {result.stderr}")
        return result.stdout


def write_config(workdir: Path, *, storage: dict[str, str], port: int) -> None:
    (workdir / "pepper").write_text("e2e-identity-pepper-" + "z" * 40 + "\n")
    document = {
        "storage": storage,
        "gateway": {"listen": f"127.0.0.1:{port}", "routes": []},
        "security": {"pepper": "file:pepper"},
    }
    (workdir / "bastion.yaml").write_text(yaml.safe_dump(document))


def start(workdir: Path, port: int, log: str) -> Server:
    process = procs.start(["bastion", "serve"], cwd=workdir, log=workdir / log)
    procs.wait_http(f"http://127.0.0.1:{port}/_bastion/health", process=process, log=workdir / log)
    return Server(f"http://127.0.0.1:{port}", workdir, process)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("identity-e2e")
    port = procs.free_port()
    write_config(workdir, storage={"url": f"sqlite:///{workdir / 'bastion.db'}"}, port=port)
    admin_key = procs.bastion(["init"], cwd=workdir).stdout.strip()
    running = start(workdir, port, "bastion.log")
    running.secrets += [admin_key, PASSWORD]
    try:
        yield running
    finally:
        procs.stop(running.process)


def test_cli_user_login_whoami_and_logout(server: Server, tmp_path: Path) -> None:
    server.cli("user", "create", "Una@Example.com", "--password-stdin", stdin=PASSWORD + "\n")
    server.cli("role", "bind", "viewer", "--user", "una@example.com")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    server.cli(
        "login",
        "--server",
        server.base,
        "--user",
        "UNA@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        env=env,
    )
    stored = tmp_path / "config" / "bastion" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    first = json.loads(stored.read_text())["refreshToken"]
    server.secrets.append(first)
    me = json.loads(server.cli("whoami", env=env))
    assert me["principal"] == "una@example.com" and me["roles"] == ["viewer"]
    second = json.loads(stored.read_text())["refreshToken"]
    assert second != first  # rotated on use
    server.secrets.append(second)
    server.cli("logout", env=env)
    assert not stored.exists()
    failed = subprocess.run(
        [
            procs.sys.executable,
            "-m",
            "bastion",
            "login",
            "--server",
            server.base,
            "--user",
            "una@example.com",
            "--password-stdin",
        ],
        input="wrong\n",
        capture_output=True,
        text=True,
        cwd=server.workdir,
        env={**os.environ, **env},
        timeout=60,
    )
    assert failed.returncode == 1 and failed.stderr.strip() == "error: login failed"


def test_agent_registers_once_through_the_cli_token(server: Server) -> None:
    token = server.cli("agent", "create-token", "--capabilities", "classification,analysis").strip()
    server.secrets.append(token)
    first = httpx.post(
        f"{server.base}/_bastion/api/v1/agents/register",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "e2e-agent"},
        timeout=10,
    )
    assert first.status_code == 201
    server.secrets.append(first.json()["apiKey"])
    second = httpx.post(
        f"{server.base}/_bastion/api/v1/agents/register",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert second.status_code == 401
    issued = httpx.post(
        f"{server.base}/_bastion/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(first.json()["clientId"], first.json()["apiKey"]),
        timeout=10,
    ).json()
    server.secrets.append(issued["access_token"])
    events = [
        json.loads(line)
        for line in server.cli("audit", "list", "--action", "agent.register", "--json").splitlines()
    ]
    assert [e["outcome"] for e in events] == ["success", "failure"]


def test_login_lock_survives_a_restart(server: Server) -> None:
    server.cli("user", "create", "vic@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    for n in range(5):
        response = httpx.post(
            f"{server.base}/_bastion/login",
            json={"username": "vic@example.com", "password": f"bad-{n}"},
            headers={"X-Forwarded-For": f"192.0.2.{n}"},
            timeout=30,
        )
        assert response.status_code == 401
    procs.stop(server.process)
    port = int(server.base.rsplit(":", 1)[1])
    server.process = start(server.workdir, port, "bastion2.log").process
    locked = httpx.post(
        f"{server.base}/_bastion/login",
        json={"username": "vic@example.com", "password": PASSWORD},
        timeout=30,
    )
    assert locked.status_code == 401


def test_no_secret_at_rest(server: Server) -> None:
    logged = httpx.post(
        f"{server.base}/_bastion/login",
        json={"username": "una@example.com", "password": PASSWORD},
        timeout=30,
    ).json()
    server.secrets += [logged["access_token"], logged["refresh_token"]]
    files = [p for p in server.workdir.iterdir() if p.is_file() and p.name != "pepper"]
    assert any(p.name == "bastion.db" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in server.secrets:
            assert secret.encode() not in data, f"{secret[:10]}… found in {path.name}"
    exported = server.cli("audit", "list", "--limit", "100000", "--json")
    assert not any(secret in exported for secret in server.secrets)


@pytest.mark.postgres
@pytest.mark.redis
def test_revocation_reaches_the_other_replica_within_a_second(
    tmp_path: Path, fresh_postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    replicas: list[Server] = []
    storage = {
        "url": fresh_postgres_url,
        "redisUrl": redis_url,
        "redisPrefix": redis_prefix + "identity:",
    }
    try:
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            port = procs.free_port()
            write_config(workdir, storage=storage, port=port)
            if name == "a":
                admin_key = procs.bastion(["init"], cwd=workdir).stdout.strip()
                procs.bastion(["migrate"], cwd=workdir)
            replicas.append(start(workdir, port, "bastion.log"))
        a, b = replicas
        admin = {"Authorization": f"Bearer {admin_key}"}
        created = httpx.post(
            f"{a.base}/_bastion/api/v1/apikeys",
            headers=admin,
            json={"name": "shared", "scopes": ["identity:read"]},
            timeout=10,
        ).json()
        key = {"Authorization": f"Bearer {created['secret']}"}
        for replica in replicas:  # both verify it, so both have it cached
            assert (
                httpx.get(
                    f"{replica.base}/_bastion/api/v1/whoami", headers=key, timeout=10
                ).status_code
                == 200
            )
        time.sleep(1.2)  # past the database backstop: replica b now trusts the broadcast
        assert (
            httpx.delete(
                f"{a.base}/_bastion/api/v1/apikeys/{created['id']}", headers=admin, timeout=10
            ).status_code
            == 200
        )
        deadline = time.monotonic() + 1.0
        status = 200
        while time.monotonic() < deadline and status == 200:
            status = httpx.get(
                f"{b.base}/_bastion/api/v1/whoami", headers=key, timeout=10
            ).status_code
        assert status == 401
    finally:
        for replica in replicas:
            procs.stop(replica.process)
