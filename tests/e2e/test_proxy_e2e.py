"""The walking skeleton end to end: bastion under uvicorn in front of the sample upstream.

Real processes on loopback; the CLI is driven as a user drives it; the audit trail is read back
through `bastion audit list --json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from bastion.sample.orchestrator import SAMPLE_ROUTES
from tests.e2e import procs

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    base: str
    workdir: Path
    admin_key: str
    limited_key: str

    def cli(self, *args: str, check: bool = True) -> procs.subprocess.CompletedProcess[str]:
        return procs.bastion(args, cwd=self.workdir, check=check)

    def audit(self) -> list[dict[str, object]]:
        out = self.cli("audit", "list", "--limit", "10000", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def audit_for(self, request_id: str) -> list[dict[str, object]]:
        return [e for e in self.audit() if e["request"].get("requestId") == request_id]  # type: ignore[union-attr]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    if request.param == "postgres":
        storage_url = request.getfixturevalue("fresh_postgres_url")
    else:
        storage_url = f"sqlite:///{workdir / 'bastion.db'}"
    port, upstream_port = procs.free_ports(2)
    (workdir / "pepper").write_text("e2e-pepper-" + "x" * 40 + "\n")
    (workdir / "bastion.yaml").write_text(
        yaml.safe_dump(
            {
                "storage": {"url": storage_url},
                "gateway": {
                    "listen": f"127.0.0.1:{port}",
                    "upstream": f"http://127.0.0.1:{upstream_port}",
                    "routes": SAMPLE_ROUTES,
                    "publicPaths": ["/health"],
                },
                "security": {"pepper": "file:pepper"},
            }
        )
    )
    admin_key = procs.bastion(["init"], cwd=workdir).stdout.strip()
    limited_key = procs.bastion(
        ["auth", "create-key", "--name", "limited", "--scopes", "patterns:read,identity:read"],
        cwd=workdir,
    ).stdout.strip()
    upstream_log, bastion_log = workdir / "upstream.log", workdir / "bastion.log"
    upstream = procs.start(
        ["bastion.sample", "--port", str(upstream_port)], cwd=workdir, log=upstream_log
    )
    server = procs.start(["bastion", "serve"], cwd=workdir, log=bastion_log)
    try:
        procs.wait_http(
            f"http://127.0.0.1:{upstream_port}/health", process=upstream, log=upstream_log
        )
        procs.wait_http(f"http://127.0.0.1:{port}/_bastion/health", process=server, log=bastion_log)
        yield Stack(f"http://127.0.0.1:{port}", workdir, admin_key, limited_key)
    finally:
        procs.stop(server)
        procs.stop(upstream)


def _get(
    stack: Stack,
    path: str,
    *,
    key: str | None = None,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
) -> httpx.Response:
    sent = list(headers or [])
    if key is not None:
        sent.append(("Authorization", f"Bearer {key}"))
    return httpx.request(method, stack.base + path, headers=sent, timeout=10)


def test_allowed_request_reaches_upstream_with_identity(stack: Stack) -> None:
    response = _get(stack, "/api/patterns", key=stack.limited_key)
    assert response.status_code == 200
    caller = response.json()["caller"]
    assert caller["principal"] == "admin@example.com"
    assert caller["tenant"] == "default"
    assert caller["roles"] == "admin"
    request_id = response.headers["x-bastion-request-id"]
    assert caller["requestId"] == request_id
    [event] = stack.audit_for(request_id)
    assert event["action"] == "pattern.read"
    assert event["outcome"] == "success"
    assert event["actor"]["id"] == "admin@example.com"  # type: ignore[index]


def test_upstream_can_verify_identity_assertion(stack: Stack) -> None:
    import jwt

    response = _get(stack, "/api/whoami", key=stack.limited_key)
    headers = dict(response.json()["data"]["headers"])
    token = headers["x-bastion-identity"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwks = httpx.get(stack.base + "/.well-known/jwks.json", timeout=5).json()
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
    key = jwt.PyJWK(jwk)
    claims = jwt.decode(token, key.key, algorithms=[jwk["alg"]], options={"verify_aud": False})
    assert claims["sub"] == "admin@example.com"
    assert claims["tenant"] == "default"


def test_missing_key_is_401_and_audited(stack: Stack) -> None:
    response = _get(stack, "/api/patterns")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    [event] = stack.audit_for(body["requestId"])
    assert event["outcome"] == "failure"
    assert event["details"]["reason"] == "missing_credential"  # type: ignore[index]


def test_key_without_scope_is_403_and_audited(stack: Stack) -> None:
    response = _get(
        stack, "/api/patterns/content-classifier/execute", key=stack.limited_key, method="POST"
    )
    assert response.status_code == 403
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["action"] == "pattern.execute"
    assert event["outcome"] == "denied"
    assert event["resource"] == {"type": "patterns", "id": "content-classifier"}


def test_admin_key_may_execute(stack: Stack) -> None:
    response = _get(
        stack, "/api/patterns/content-classifier/execute", key=stack.admin_key, method="POST"
    )
    assert response.status_code == 201
    [event] = stack.audit_for(response.headers["x-bastion-request-id"])
    assert event["action"] == "pattern.execute"
    assert event["outcome"] == "success"


def test_unmatched_route_is_denied(stack: Stack) -> None:
    response = _get(stack, "/api/secret-admin-panel", key=stack.admin_key)
    assert response.status_code == 403
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["action"] == "authz.deny"
    assert event["outcome"] == "denied"


def test_revoked_key_is_401(stack: Stack) -> None:
    key = stack.cli(
        "auth", "create-key", "--name", "short-lived", "--scopes", "patterns:read"
    ).stdout.strip()
    assert _get(stack, "/api/patterns", key=key).status_code == 200
    stack.cli("auth", "revoke-key", "short-lived")
    response = _get(stack, "/api/patterns", key=key)
    assert response.status_code == 401
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["outcome"] == "failure"
    assert event["details"]["reason"] == "revoked_key"  # type: ignore[index]


@pytest.mark.parametrize(
    "spelling",
    [
        "X-Bastion-Principal",
        "x_bastion_principal",
        "X-Bastion-Tenant",
        "X_BASTION_ROLES",
        "Remote-User",
        "X-Forwarded-User",
    ],
)
def test_client_sent_identity_header_never_reaches_upstream(stack: Stack, spelling: str) -> None:
    response = _get(
        stack, "/api/whoami", key=stack.limited_key, headers=[(spelling, "mallory@evil.example")]
    )
    assert response.status_code == 200
    received = response.json()["data"]["headers"]
    assert all("mallory" not in value for _, value in received)
    principals = [v for k, v in received if k == "x-bastion-principal"]
    assert principals == ["admin@example.com"]


def test_bastion_key_is_not_forwarded_to_upstream(stack: Stack) -> None:
    response = _get(stack, "/api/whoami", key=stack.limited_key)
    received = response.json()["data"]["headers"]
    assert all(stack.limited_key not in value for _, value in received)


def test_public_path_without_key(stack: Stack) -> None:
    assert _get(stack, "/health").status_code == 200


def test_non_canonical_path_is_400(stack: Stack) -> None:
    response = httpx.get(
        stack.base + "/api/patterns/..%2fagents",
        timeout=5,
        headers={"Authorization": f"Bearer {stack.limited_key}"},
    )
    assert response.status_code == 400


def test_no_secret_in_database_or_logs(stack: Stack) -> None:
    needles = [stack.admin_key, stack.limited_key]
    files = [p for p in stack.workdir.iterdir() if p.is_file() and p.name != "pepper"]
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, f"{needle[:12]}… found in {path.name}"
    exported = stack.cli("audit", "list", "--limit", "100000", "--json").stdout
    assert not any(needle in exported for needle in needles)
