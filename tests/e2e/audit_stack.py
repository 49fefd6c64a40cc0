"""An e2e stack for the audit trail: ``bastion serve`` (restartable, killable) in front of the
sample upstream, on SQLite or PostgreSQL, with the CLI driven as an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bastion.sample.orchestrator import SAMPLE_ROUTES
from tests.e2e import procs


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class AuditStack:
    workdir: Path
    port: int
    upstream_port: int
    admin_key: str = ""
    limited_key: str = ""
    server: subprocess.Popen[bytes] | None = None
    upstream: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return procs.bastion(args, cwd=self.workdir, check=check)

    def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"bastion-{self.starts}.log"
        self.server = procs.start(["bastion", "serve"], cwd=self.workdir, log=log)
        procs.wait_http(f"{self.base}/_bastion/health", process=self.server, log=log, timeout=60)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush, nothing but what is already durable."""
        assert self.server is not None
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait()

    def stop(self) -> None:
        if self.server is not None:
            procs.stop(self.server)

    def events(self) -> list[dict[str, Any]]:
        out = self.cli("audit", "list", "--limit", "100000", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def get(self, path: str, *, key: str | None = None, method: str = "GET") -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, self.base + path, headers=headers, timeout=30)


def request_id(response: httpx.Response) -> str | None:
    """The request id bastion gave an answer (header, or the problem body of a deny)."""
    found = response.headers.get("x-bastion-request-id")
    if found:
        return found
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("requestId") if isinstance(body, dict) else None


@contextmanager
def audit_stack(
    workdir: Path, *, storage_url: str | None = None, config: dict[str, Any] | None = None
) -> Iterator[AuditStack]:
    workdir.mkdir(parents=True, exist_ok=True)
    stack = AuditStack(workdir, *procs.free_ports(2))
    (workdir / "pepper").write_text("audit-e2e-pepper-" + "p" * 40 + "\n")
    document = merge(
        {
            "storage": {"url": storage_url or f"sqlite:///{workdir / 'bastion.db'}"},
            "gateway": {
                "listen": f"127.0.0.1:{stack.port}",
                "upstream": f"http://127.0.0.1:{stack.upstream_port}",
                "routes": SAMPLE_ROUTES,
                "publicPaths": ["/health"],
            },
            "security": {"pepper": "file:pepper"},
        },
        config or {},
    )
    (workdir / "bastion.yaml").write_text(yaml.safe_dump(document))
    stack.admin_key = stack.cli("init").stdout.strip()
    stack.limited_key = stack.cli(
        "auth", "create-key", "--name", "limited", "--scopes", "patterns:read"
    ).stdout.strip()
    upstream_log = workdir / "upstream.log"
    stack.upstream = procs.start(
        ["bastion.sample", "--port", str(stack.upstream_port)], cwd=workdir, log=upstream_log
    )
    try:
        procs.wait_http(
            f"http://127.0.0.1:{stack.upstream_port}/health",
            process=stack.upstream,
            log=upstream_log,
        )
        stack.start()
        yield stack
    finally:
        stack.stop()
        if stack.upstream is not None:
            procs.stop(stack.upstream)
