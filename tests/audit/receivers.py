"""Real receivers for the destination tests: a private rsyslog, a local HTTP receiver that
checks Splunk HEC and Elasticsearch bulk requests, and moto's server for CloudWatch Logs.
Each listens on 127.0.0.1 only, lives in the test's scratch directory and is stopped by PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed (CI=true: destination tests are mandatory)")
    pytest.skip(f"{what} is not installed")


def wait_for(check: Callable[[], bool], *, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


RSYSLOG_TEMPLATE = (
    "%protocol-version%|%syslogfacility-text%|%syslogseverity-text%|%app-name%|%procid%"
    "|%msgid%|%structured-data%|%msg%\\n"
)


@dataclass
class Rsyslog:
    directory: Path
    udp_port: int
    tcp_port: int
    socket_path: Path

    @property
    def received(self) -> Path:
        return self.directory / "received.log"

    def text(self) -> str:
        return self.received.read_text() if self.received.exists() else ""

    def lines(self) -> list[list[str]]:
        if not self.received.exists():
            return []
        return [line.split("|", 7) for line in self.received.read_text().splitlines()]


@contextmanager
def rsyslog(
    directory: Path, *, udp_port: int | None = None, tcp_port: int | None = None
) -> Iterator[Rsyslog]:
    binary = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    if binary is None:
        unavailable("rsyslogd")
    assert binary is not None
    directory.mkdir(parents=True, exist_ok=True)
    server = Rsyslog(
        directory,
        udp_port or free_port(socket.SOCK_DGRAM),
        tcp_port or free_port(),
        directory / "log.sock",
    )
    conf = directory / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{directory}")\n'
        'module(load="imudp")\nmodule(load="imtcp")\n'
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imudp" address="127.0.0.1" port="{server.udp_port}")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{server.tcp_port}")\n'
        f'input(type="imuxsock" Socket="{server.socket_path}" UseSpecialParser="off"'
        ' ParseHostname="on")\n'
        f'template(name="wire" type="string" string="{RSYSLOG_TEMPLATE}")\n'
        f'action(type="omfile" file="{server.received}" template="wire")\n'
    )
    check = subprocess.run([binary, "-N1", "-f", str(conf)], capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr.decode()
    pid_file = directory / "rsyslogd.pid"
    process = subprocess.Popen(
        [binary, "-n", "-f", str(conf), "-i", str(pid_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: _accepts(server.tcp_port) and server.socket_path.exists())
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class HttpReceiver:
    """Accepts POSTs, records them, answers what ``responder`` says."""

    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    responder: Callable[[str, dict[str, str], bytes], tuple[int, bytes]] = (
        lambda path, headers, body: (200, b'{"text":"Success","code":0}')
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.requests.append({"path": self.path, "headers": headers, "body": body})
            status, answer = receiver.responder(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def moto_server(directory: Path) -> Iterator[str]:
    try:
        import moto  # noqa: F401
    except ImportError:
        unavailable("moto[server]")
    port = free_port()
    log = (directory / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: _accepts(port), seconds=30), "moto did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def records_of(rig_events: list[Any]) -> list[dict[str, Any]]:
    from bastion.core.audit import event_to_json

    return [json.loads(json.dumps(event_to_json(e))) for e in rig_events]
