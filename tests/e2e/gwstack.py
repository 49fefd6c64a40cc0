"""Gateway e2e stacks: bastion (``bastion serve``) in front of `gw_upstream`, real processes.

`gateway_stack` writes bastion.yaml from a base configuration merged with the test's overrides,
initialises the database, issues an admin key and a limited key, starts the upstream and
bastion, and stops both (by PID) at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e import procs

REPO = Path(__file__).parents[2]
DEPLOY = REPO / "deploy"

ROUTES: list[dict[str, Any]] = [
    {"method": "GET", "path": "/api/patterns", "resource": "patterns", "action": "read"},
    {"method": "POST", "path": "/api/patterns", "resource": "patterns", "action": "create"},
    {
        "method": "GET",
        "path": "/api/patterns/{id}",
        "resource": "patterns",
        "action": "read",
        "id": "{id}",
    },
    {"method": "*", "path": "/admin/**", "resource": "admin", "action": "manage"},
    {"method": "GET", "path": "/admin", "resource": "admin", "action": "manage"},
    {
        "method": "GET",
        "path": "/internal/**",
        "resource": "patterns",
        "action": "read",
        "ipAllowlist": ["10.0.0.0/8", "fd00::/8"],
    },
    {"method": "GET", "path": "/hold/{key}", "resource": "patterns", "action": "read"},
    {"method": "GET", "path": "/slow", "resource": "patterns", "action": "read"},
    {"method": "GET", "path": "/ws", "resource": "patterns", "action": "read"},
]
LIMITED_SCOPES = "patterns:read,patterns:create"


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class GatewayStack:
    workdir: Path
    port: int
    upstream_port: int
    admin_key: str
    limited_key: str
    scheme: str = "http"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def upstream(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}"

    def cli(self, *args: str) -> str:
        return procs.bastion(args, cwd=self.workdir).stdout

    def audit(self) -> list[dict[str, Any]]:
        out = self.cli("audit", "list", "--limit", "100000", "--json")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def audit_for(self, request_id: str) -> list[dict[str, Any]]:
        return [e for e in self.audit() if e["request"].get("requestId") == request_id]

    def upstream_count(self) -> int:
        return int(httpx.get(self.upstream + "/_up/count", timeout=5).json()["count"])

    def get(self, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        method = kwargs.pop("method", "GET")
        return httpx.request(method, self.base + path, headers=headers, timeout=15, **kwargs)


def base_config(port: int, upstream_port: int, storage_url: str) -> dict[str, Any]:
    return {
        "storage": {"url": storage_url},
        "gateway": {
            "listen": f"127.0.0.1:{port}",
            "upstream": f"http://127.0.0.1:{upstream_port}",
            "routes": ROUTES,
            "publicPaths": ["/public", "/public/**"],
        },
        "security": {"pepper": "file:pepper"},
    }


def prepare(workdir: Path, overrides: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    port, upstream_port = procs.free_ports(2)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "pepper").write_text("gw-e2e-pepper-" + "x" * 40 + "\n")
    config = merge(
        base_config(port, upstream_port, f"sqlite:///{workdir / 'bastion.db'}"), overrides
    )
    (workdir / "bastion.yaml").write_text(yaml.safe_dump(config))
    return port, upstream_port, config


def start_upstream(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    log = workdir / f"upstream-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.gw_upstream", "--port", str(port)],
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs.wait_http(f"http://127.0.0.1:{port}/_up/count", process=process, log=log)
    return process


def start_bastion(
    workdir: Path, port: int, *, args: Sequence[str] = (), name: str = "bastion", verify: Any = None
) -> subprocess.Popen[bytes]:
    log = workdir / f"{name}.log"
    process = procs.start(["bastion", "serve", "--port", str(port), *args], cwd=workdir, log=log)
    scheme = "https" if verify is not None else "http"
    url = f"{scheme}://127.0.0.1:{port}/_bastion/health"
    if verify is None:
        procs.wait_http(url, process=process, log=log)
    else:
        wait_tls(url, process=process, log=log, verify=verify)
    return process


def wait_tls(url: str, *, process: subprocess.Popen[bytes], log: Path, verify: Any) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"bastion exited early:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1, verify=verify)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


@contextmanager
def gateway_stack(
    workdir: Path,
    overrides: dict[str, Any] | None = None,
    *,
    bastion_args: Sequence[str] = (),
    tls_verify: Any = None,
) -> Iterator[GatewayStack]:
    port, upstream_port, _ = prepare(workdir, overrides or {})
    admin_key = procs.bastion(["init"], cwd=workdir).stdout.strip()
    limited_key = procs.bastion(
        ["auth", "create-key", "--name", "limited", "--scopes", LIMITED_SCOPES], cwd=workdir
    ).stdout.strip()
    stack = GatewayStack(
        workdir,
        port,
        upstream_port,
        admin_key,
        limited_key,
        scheme="https" if tls_verify is not None else "http",
    )
    try:
        stack.processes.append(start_upstream(workdir, upstream_port))
        stack.processes.append(start_bastion(workdir, port, args=bastion_args, verify=tls_verify))
        yield stack
    finally:
        for process in reversed(stack.processes):
            procs.stop(process)


def raw_request(port: int, request: bytes, *, timeout: float = 10) -> tuple[int, bytes]:
    """Send bytes exactly as given (no client-side normalisation); (status, whole response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1."):
        return 0, data
    return int(data.split(b" ", 2)[1]), data


def answer_within(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (at most ``seconds``)."""
    sock.settimeout(seconds)
    answer = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def raw_get(
    port: int, target: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes]:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    return raw_request(port, b"\r\n".join(lines) + b"\r\n\r\n")


def body_json(response: bytes) -> Any:
    """The JSON body of a raw HTTP/1.1 response (plain or chunked)."""
    head, _, body = response.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out += rest[:size]
            body = rest[size + 2 :]
        body = out
    return json.loads(body)


def worker_pids(stack: GatewayStack) -> list[int]:
    """The worker processes of a stack started with ``--workers N``."""
    server = stack.processes[-1].pid
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    return [
        pid for pid in map(int, children) if b"spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The worker ``pid`` accepts nothing meanwhile (the other one takes every connection).
    Kept short: uvicorn replaces a worker that does not answer its health check in 5 s."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
