"""The processes the gateway benchmark measures: nginx (static upstream, plain proxy and two
forward-auth servers), two bastions (audit on and off), and the two uvicorn baselines.
All on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "nginx"
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up:\n{log.read_text(errors='replace')}")


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, args: list[str], *, cwd: Path, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{name}.log"
        process = subprocess.Popen(
            args,
            cwd=cwd,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.started.append(process)
        self.named[name] = process
        return process, log

    def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


NGINX = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    upstream static {{ server 127.0.0.1:{static}; keepalive 64; }}
    upstream bastion {{ server 127.0.0.1:{bastion}; keepalive 64; }}
    upstream minimal {{ server 127.0.0.1:{minimal}; keepalive 64; }}
    server {{ listen 127.0.0.1:{static}; location / {{ return 200 "ok\\n"; }} }}
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            proxy_pass http://static;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{auth_bastion};
        include {deploy}/bastion-auth.conf;
        location / {{ include {deploy}/bastion-protect.conf; proxy_pass http://static; }}
    }}
    server {{
        listen 127.0.0.1:{auth_minimal};
        include {dir}/minimal-auth.conf;
        location / {{ include {deploy}/bastion-protect.conf; proxy_pass http://static; }}
    }}
}}
"""


@dataclass
class Ports:
    static: int
    plain: int
    auth_bastion: int
    auth_minimal: int
    bastion: int
    bastion_noaudit: int
    passthrough: int
    minimal: int


def bastion_dir(
    workdir: Path, name: str, port: int, ports: Ports, *, audit: bool
) -> tuple[Path, str]:
    home = workdir / name
    home.mkdir()
    (home / "pepper").write_text("bench-pepper-" + "x" * 40 + "\n")
    config = {
        "storage": {"url": f"sqlite:///{home / 'bastion.db'}"},
        "gateway": {
            "listen": f"127.0.0.1:{port}",
            "upstream": f"http://127.0.0.1:{ports.static}",
            "trustedProxies": ["127.0.0.1/32"],
            "publicPaths": ["/public"],
            "routes": [
                {"method": "GET", "path": "/bench", "resource": "patterns", "action": "read"}
            ],
        },
        "security": {"pepper": "file:pepper", "audit": {"enabled": audit}},
    }
    (home / "bastion.yaml").write_text(yaml.safe_dump(config))
    cli = [sys.executable, "-m", "bastion"]
    subprocess.run([*cli, "init"], cwd=home, check=True, capture_output=True)
    key = subprocess.run(
        [*cli, "auth", "create-key", "--name", "bench", "--scopes", "patterns:read"],
        cwd=home,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return home, key


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its children (a bastion's audit writer,
    nginx's worker), from /proc: what a run cost the server, whatever the machine's steal."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@contextmanager
def environment(workdir: Path) -> Iterator[tuple[Ports, str, dict[str, int]]]:
    """The processes on free ports, the bench key, and each server's PID by name."""
    ports = Ports(*(free_port() for _ in range(8)))
    procs = Processes(workdir)
    try:
        (workdir / "tmp").mkdir()
        minimal_auth = (
            (DEPLOY / "bastion-auth.conf").read_text().replace("http://bastion/", "http://minimal/")
        )
        (workdir / "minimal-auth.conf").write_text(minimal_auth)
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX.format(dir=workdir, deploy=DEPLOY, **vars(ports)))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        process, log = procs.start(
            "nginx",
            [nginx, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "nginx-error.log")],
            cwd=workdir,
        )
        wait_http(f"http://127.0.0.1:{ports.static}/", process, log)
        home, key = bastion_dir(workdir, "bastion", ports.bastion, ports, audit=True)
        home_off, _ = bastion_dir(
            workdir, "bastion-noaudit", ports.bastion_noaudit, ports, audit=False
        )
        cli = [sys.executable, "-m", "bastion", "serve", "--log-level", "warning"]
        for name, cwd, port in (
            ("bastion", home, ports.bastion),
            ("bastion-noaudit", home_off, ports.bastion_noaudit),
        ):
            process, log = procs.start(name, [*cli, "--port", str(port)], cwd=cwd)
            wait_http(f"http://127.0.0.1:{port}/_bastion/health", process, log)
        process, log = procs.start(
            "passthrough",
            [
                sys.executable,
                str(HERE / "baselines.py"),
                "passthrough",
                "--port",
                str(ports.passthrough),
                "--upstream",
                f"http://127.0.0.1:{ports.static}",
            ],
            cwd=workdir,
        )
        wait_http(f"http://127.0.0.1:{ports.passthrough}/", process, log)
        process, log = procs.start(
            "minimal",
            [sys.executable, str(HERE / "baselines.py"), "verify", "--port", str(ports.minimal)],
            cwd=workdir,
        )
        wait_http(f"http://127.0.0.1:{ports.minimal}/", process, log)
        yield ports, key, {name: proc.pid for name, proc in procs.named.items()}
    finally:
        procs.stop_all()
