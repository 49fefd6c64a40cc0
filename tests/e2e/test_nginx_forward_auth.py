"""Forward-auth with real nginx (Debian's, auth_request compiled in) and the shipped snippets in
deploy/nginx/, in front of the echoing upstream; bastion answers ``/_bastion/verify``.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e import procs
from tests.e2e.gwstack import DEPLOY, GatewayStack, body_json, gateway_stack, raw_get
from tests.e2e.test_gateway_paths import OVERRIDES, PATH_BATTERY, REWRITES, SPOOFED

pytestmark = pytest.mark.e2e

CONFIG = {"gateway": {"trustedProxies": ["127.0.0.1/32"]}}
LIMITED = {
    **CONFIG,
    "security": {
        "rateLimit": {"enabled": True, "perPattern": {"requestsPerMinute": 2, "burstSize": 2}}
    },
}

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    upstream bastion {{ server 127.0.0.1:{bastion}; keepalive 16; }}
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        include {deploy}/bastion-auth.conf;
        location / {{
            include {deploy}/bastion-protect.conf;
            proxy_pass http://app;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, workdir: Path, stack: GatewayStack) -> None:
        self.port = procs.free_port()
        self.dir = workdir / "nginx"
        (self.dir / "tmp").mkdir(parents=True)
        self.dir.chmod(0o777)
        (self.dir / "tmp").chmod(0o777)
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(
            NGINX_CONF.format(
                dir=self.dir,
                bastion=stack.port,
                upstream=stack.upstream_port,
                port=self.port,
                deploy=DEPLOY / "nginx",
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        args = [nginx, "-c", str(self.conf), "-p", str(self.dir), "-e", str(self.dir / "error.log")]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(args, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/public", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError((self.dir / "error.log").read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(3)  # QUIT: graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    with gateway_stack(tmp_path_factory.mktemp("gw-nginx"), CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def nginx(stack: GatewayStack) -> Iterator[Nginx]:
    server = Nginx(stack.workdir, stack)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def auth(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", b"Bearer " + key.encode())]


def test_allowed_request_reaches_upstream_with_verifiable_identity(
    stack: GatewayStack, nginx: Nginx
) -> None:
    response = httpx.get(
        nginx.base + "/api/patterns", headers={"Authorization": f"Bearer {stack.limited_key}"}
    )
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["x-bastion-principal"] == "admin@example.com"
    assert "authorization" not in headers
    jwks = httpx.get(stack.base + "/.well-known/jwks.json").json()
    kid = jwt.get_unverified_header(headers["x-bastion-identity"])["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(headers["x-bastion-identity"], key.key, algorithms=["EdDSA"])
    assert claims["sub"] == "admin@example.com"
    [event] = stack.audit_for(headers["x-bastion-request-id"])
    assert event["action"] == "pattern.read"
    assert event["details"]["mode"] == "forward-auth"
    assert event["request"]["path"] == "/api/patterns"


def test_missing_key_is_401_and_forbidden_route_is_403(stack: GatewayStack, nginx: Nginx) -> None:
    before = stack.upstream_count()
    assert httpx.get(nginx.base + "/api/patterns").status_code == 401
    forbidden = httpx.get(
        nginx.base + "/admin/users", headers={"Authorization": f"Bearer {stack.limited_key}"}
    )
    assert forbidden.status_code == 403
    assert stack.upstream_count() == before


def test_public_path_passes_without_key(stack: GatewayStack, nginx: Nginx) -> None:
    assert httpx.get(nginx.base + "/public/readme").status_code == 200


@pytest.mark.parametrize("target", PATH_BATTERY, ids=lambda t: t.decode("latin-1"))
def test_path_battery_through_nginx_never_allows_admin(
    stack: GatewayStack, nginx: Nginx, target: bytes
) -> None:
    before = stack.upstream_count()
    status, response = raw_get(nginx.port, target, auth(stack.limited_key))
    assert status not in range(200, 400), response[:300]
    assert stack.upstream_count() == before


@pytest.mark.parametrize("name", SPOOFED, ids=lambda n: n.decode())
def test_spoofed_identity_header_through_nginx_never_reaches_upstream(
    stack: GatewayStack, nginx: Nginx, name: bytes
) -> None:
    headers = [*auth(stack.limited_key), (name, b"mallory"), (name, b"mallory-again")]
    status, response = raw_get(nginx.port, b"/api/patterns", headers)
    assert status == 200
    echoed = body_json(response)
    assert not any("mallory" in value for _, value in echoed["headers"])
    assert [v for k, v in echoed["headers"] if k == "x-bastion-principal"] == ["admin@example.com"]


def test_method_override_headers_through_nginx_never_reach_upstream(
    stack: GatewayStack, nginx: Nginx
) -> None:
    headers = [*auth(stack.limited_key), *((name, b"DELETE") for name in OVERRIDES)]
    status, response = raw_get(nginx.port, b"/api/patterns/1", headers)
    assert status == 200
    echoed = body_json(response)
    assert echoed["method"] == "GET"
    assert not any("DELETE" in value for _, value in echoed["headers"])


def test_path_rewrite_headers_through_nginx_never_reach_upstream(
    stack: GatewayStack, nginx: Nginx
) -> None:
    status, response = raw_get(nginx.port, b"/public", [(n, b"/admin/users") for n in REWRITES])
    assert status == 200
    echoed = body_json(response)
    assert echoed["path"] == "/public"
    assert not any("/admin" in value for _, value in echoed["headers"])


def test_client_cannot_inject_original_uri_through_nginx(stack: GatewayStack, nginx: Nginx) -> None:
    response = httpx.get(
        nginx.base + "/admin/users",
        headers={
            "Authorization": f"Bearer {stack.limited_key}",
            "X-Original-URI": "/api/patterns",
            "X-Forwarded-Uri": "/api/patterns",
            "X-Original-Method": "GET",
        },
    )
    assert response.status_code == 403


def test_rate_limited_through_nginx_is_429_with_retry_after(tmp_path: Path) -> None:
    with gateway_stack(tmp_path, LIMITED) as limited:
        server = Nginx(tmp_path, limited)
        server.start()
        try:
            headers = {"Authorization": f"Bearer {limited.limited_key}"}
            url = server.base + "/api/patterns/limited"
            statuses = [httpx.get(url, headers=headers) for _ in range(3)]
            assert [r.status_code for r in statuses] == [200, 200, 429]
            assert int(statuses[-1].headers["retry-after"]) >= 1
            other = httpx.get(server.base + "/api/patterns/other", headers=headers)
            assert other.status_code == 200
        finally:
            server.stop()


def verify(stack: GatewayStack, headers: dict[str, str], path: str = "") -> httpx.Response:
    return httpx.get(stack.base + "/_bastion/verify" + path, headers=headers, timeout=10)


def test_traefik_style_headers(stack: GatewayStack) -> None:
    key = {"Authorization": f"Bearer {stack.limited_key}"}
    allowed = verify(
        stack, {**key, "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/patterns"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["x-bastion-principal"] == "admin@example.com"
    denied = verify(stack, {**key, "X-Forwarded-Method": "DELETE", "X-Forwarded-Uri": "/admin/x"})
    assert denied.status_code == 403


def test_envoy_style_path_suffix(stack: GatewayStack) -> None:
    key = {"Authorization": f"Bearer {stack.limited_key}"}
    assert verify(stack, key, "/api/patterns").status_code == 200
    assert verify(stack, key, "/admin/users").status_code == 403
    assert verify(stack, {}, "/api/patterns").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {
            "X-Original-URI": "/api/patterns",
            "X-Forwarded-Uri": "/admin",
            "X-Original-Method": "GET",
        },
        {
            "X-Original-URI": "/api/patterns",
            "X-Original-Method": "GET",
            "X-Forwarded-Method": "PUT",
        },
        {"X-Original-URI": "/api/patterns"},
        {},
        {"X-Original-URI": "/public/../admin", "X-Original-Method": "GET"},
        {"X-Original-URI": "http://evil/api/patterns", "X-Original-Method": "GET"},
    ],
    ids=["uri-conflict", "method-conflict", "no-method", "nothing", "dot-segment", "absolute"],
)
def test_unclear_original_request_is_403_never_other_status(
    stack: GatewayStack, headers: dict[str, str]
) -> None:
    response = verify(stack, {"Authorization": f"Bearer {stack.limited_key}", **headers})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "suffix", [b"/public/%2e%2e/admin", b"/admin;x", b"//admin"], ids=lambda s: s.decode()
)
def test_envoy_style_non_canonical_path_is_403_with_deny_header(
    stack: GatewayStack, suffix: bytes
) -> None:
    status, response = raw_get(stack.port, b"/_bastion/verify" + suffix, auth(stack.limited_key))
    assert status == 403  # not 400: a proxy would turn that into a 500
    head = response.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nx-bastion-deny: bad_request" in head
    [event] = stack.audit_for(body_json(response)["requestId"])
    assert event["action"] == "request.reject"
    assert event["details"]["mode"] == "forward-auth"


def test_each_verify_is_audited_once(stack: GatewayStack) -> None:
    response = verify(
        stack,
        {
            "Authorization": f"Bearer {stack.limited_key}",
            "X-Original-URI": "/api/patterns?q=1",
            "X-Original-Method": "GET",
        },
    )
    assert response.status_code == 200
    events = stack.audit_for(response.headers["x-bastion-request-id"])
    assert len(events) == 1
    assert events[0]["details"]["mode"] == "forward-auth"


def test_verify_unaffected_while_upstream_is_slow(stack: GatewayStack, nginx: Nginx) -> None:
    held: dict[str, int] = {}

    def slow_request() -> None:
        response = httpx.get(
            nginx.base + "/hold/slow-1",
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=60,
        )
        held["status"] = response.status_code

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while httpx.get(stack.upstream + "/_up/count").json()["held"] < 1:
            assert time.monotonic() < deadline, "the slow request never reached the upstream"
            time.sleep(0.05)
        key = {"Authorization": f"Bearer {stack.limited_key}"}
        answers = [
            verify(stack, {**key, "X-Original-URI": "/api/patterns", "X-Original-Method": "GET"})
            for _ in range(20)
        ]
        assert [a.status_code for a in answers] == [200] * 20
        assert httpx.get(stack.upstream + "/_up/count").json()["held"] == 1
        assert "status" not in held  # the slow request is still waiting on the upstream
    finally:
        httpx.get(stack.upstream + "/_up/release/slow-1")
        thread.join(timeout=30)
    assert held["status"] == 200
