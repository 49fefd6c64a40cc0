"""The pieces of ``bastion quickstart`` and ``bastion init``: starter files, keys, the sample."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bastion.config import BastionConfig
from bastion.crypto.checkpoints import generate_signing_key_pem
from bastion.crypto.keys import new_pepper
from bastion.errors import BastionError, ConflictError
from bastion.sample.orchestrator import SAMPLE_ROUTES
from bastion.services.bootstrap import initialise
from bastion.wiring import Services

PEPPER_FILE = "bastion.pepper"
AUDIT_KEY_FILE = "audit-signing.pem"
ADMIN_LOGIN = "admin@example.com"
LIMITED_SCOPES = ["patterns:read", "executions:read"]


@dataclass(frozen=True)
class QuickstartKeys:
    admin: str
    limited: str


def write_pepper(directory: Path) -> None:
    """A new pepper file readable by its owner only; an existing one is never replaced."""
    path = directory / PEPPER_FILE
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_pepper() + "\n")


def write_audit_signing_key(directory: Path) -> None:
    """A new Ed25519 checkpoint-signing key (PEM, 0600); an existing one is never replaced."""
    path = directory / AUDIT_KEY_FILE
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(generate_signing_key_pem())


def _write_yaml(path: Path, document: dict[str, Any], header: str) -> None:
    write_pepper(path.parent)
    write_audit_signing_key(path.parent)
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))


def write_minimal_config(path: Path) -> None:
    _write_yaml(
        path,
        {
            "storage": {"url": "sqlite:///./bastion.db"},
            "gateway": {"listen": "127.0.0.1:8080", "routes": []},
            "security": {
                "pepper": f"file:{PEPPER_FILE}",
                "audit": {"signingKey": f"file:{AUDIT_KEY_FILE}"},
            },
        },
        "# bastion configuration — see docs/configuration.md\n",
    )


def write_quickstart_config(path: Path, *, port: int, upstream_port: int) -> None:
    _write_yaml(
        path,
        {
            "storage": {"url": "sqlite:///./bastion.db"},
            "gateway": {
                "listen": f"127.0.0.1:{port}",
                "upstream": f"http://127.0.0.1:{upstream_port}",
                "routes": SAMPLE_ROUTES,
            },
            "security": {
                "pepper": f"file:{PEPPER_FILE}",
                "authentication": {"apiKeys": {"enabled": True}},
                "audit": {"enabled": True, "signingKey": f"file:{AUDIT_KEY_FILE}"},
            },
        },
        "# Written by `bastion quickstart`: bastion in front of the sample orchestrator.\n"
        "# See docs/configuration.md for every key.\n",
    )


def ensure_keys(services: Services, *, actor: dict[str, Any]) -> QuickstartKeys:
    """An admin key (initialising the tenant on first run) and a read-only limited key."""
    tenant = services.config.security.default_tenant
    suffix = ""
    try:
        done = initialise(
            storage=services.storage,
            api_keys=services.api_keys,
            clock=services.clock,
            tenant_name=tenant,
            admin_name=ADMIN_LOGIN,
            actor=actor,
        )
        admin_secret = done.admin_key.secret
    except ConflictError:
        # Keys are stored hashed, so earlier ones cannot be shown again: issue fresh ones.
        suffix = "-" + secrets.token_hex(3)
        admin_secret = services.api_keys.create(
            tenant_name=tenant,
            owner_name=None,
            name="quickstart-admin" + suffix,
            scopes=["admin"],
            expires_at=None,
            actor=actor,
        ).secret
    limited = services.api_keys.create(
        tenant_name=tenant,
        owner_name=None,
        name="quickstart-limited" + suffix,
        scopes=LIMITED_SCOPES,
        expires_at=None,
        actor=actor,
    )
    return QuickstartKeys(admin=admin_secret, limited=limited.secret)


def check_ports(
    config: BastionConfig, *, port: int | None, upstream_port: int | None, config_path: Path
) -> None:
    """Refuse ports asked for on the command line that an existing configuration does not
    use, and ports another program holds, before anything is started or printed."""
    gateway = config.gateway
    upstream = urlsplit(str(gateway.upstream)) if gateway.upstream is not None else None
    configured = {"--port": gateway.port, "--upstream-port": upstream and upstream.port}
    for flag, asked in (("--port", port), ("--upstream-port", upstream_port)):
        if asked is not None and asked != configured[flag]:
            raise BastionError(
                f"{flag} {asked}: {config_path} already sets {configured[flag]}; edit it, "
                "or run quickstart in a new directory"
            )
    ensure_port_free(gateway.host, gateway.port)
    if upstream is not None and upstream.port is not None:
        ensure_port_free(upstream.hostname or "127.0.0.1", upstream.port)


def ensure_port_free(host: str, port: int) -> None:
    """`BastionError` when ``host:port`` cannot be listened on (another program has it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BastionError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def start_sample_upstream(config: BastionConfig) -> subprocess.Popen[bytes]:
    """Run the sample orchestrator on the loopback port named by gateway.upstream."""
    if config.gateway.upstream is None:
        raise BastionError("quickstart needs gateway.upstream to point at a loopback port")
    target = urlsplit(str(config.gateway.upstream))
    host, port = target.hostname or "127.0.0.1", target.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise BastionError(f"quickstart runs the sample on loopback only, not on {host}")
    process = subprocess.Popen(
        [sys.executable, "-m", "bastion.sample", "--host", host, "--port", str(port)]
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BastionError(f"the sample upstream exited (is port {port} in use?)")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    stop_process(process)
    raise BastionError("the sample upstream did not start within 15 seconds")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_welcome(config: BastionConfig, keys: QuickstartKeys, *, config_path: Path) -> None:
    gateway = config.gateway
    base = f"http://{gateway.host}:{gateway.port}"
    lines = [
        "",
        "bastion is running in front of the sample agent orchestrator.",
        f"  gateway:   {base}   (config: {config_path})",
        f"  upstream:  {gateway.upstream}   (reach it only through bastion)",
        f"  health:    {base}{gateway.prefix}/health",
        "",
        f"  admin key:    {keys.admin}",
        f"  limited key:  {keys.limited}   (scopes: {', '.join(LIMITED_SCOPES)})",
        "  Store them now: only keyed hashes are kept, they cannot be shown again.",
        "",
        "Try:",
        "  # 200: the limited key may read patterns",
        f'  curl -s -o /dev/null -w "%{{http_code}}\\n" -H "Authorization: Bearer {keys.limited}"'
        f" {base}/api/patterns",
        "  # 401: no key",
        f'  curl -s -o /dev/null -w "%{{http_code}}\\n" {base}/api/patterns',
        "  # 403: the limited key may not execute patterns",
        f'  curl -s -o /dev/null -w "%{{http_code}}\\n" -X POST -H "Authorization: Bearer'
        f' {keys.limited}" {base}/api/patterns/content-classifier/execute',
        "",
        f"Then: {_command()} audit list --since 1h    (Ctrl-C stops bastion and the sample)",
        "",
    ]
    print("\n".join(lines), flush=True)


def _command() -> str:
    """``bastion`` as this shell can run it: the path it was started by unless that is what
    ``bastion`` alone finds (as after the README's install, where the venv is not on PATH)."""
    invoked = sys.argv[0]
    found = shutil.which("bastion")
    if "/" not in invoked or (found and Path(found).resolve() == Path(invoked).resolve()):
        return "bastion"
    return invoked
