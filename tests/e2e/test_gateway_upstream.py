"""Upstream failures through the reverse proxy: down, resetting, talking nonsense → 502, each
audited once; a client never gets an unaudited or partial allow."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import procs
from tests.e2e.gwstack import LIMITED_SCOPES, GatewayStack, prepare, start_bastion

pytestmark = pytest.mark.e2e


class FaultyUpstream:
    """Reads a request head, then misbehaves according to its path."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            if target.startswith(b"/reset"):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif target.startswith(b"/garbage"):
                conn.sendall(b"this is not HTTP\r\n\r\n")
            conn.close()

    def stop(self) -> None:
        self.sock.close()


@dataclass
class FaultStack:
    stack: GatewayStack
    upstream: FaultyUpstream


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    workdir: Path = tmp_path_factory.mktemp("gw-faults")
    routes = [{"method": "GET", "path": "/**", "resource": "patterns", "action": "read"}]
    port, upstream_port, _ = prepare(workdir, {"gateway": {"routes": routes}})
    admin_key = procs.bastion(["init"], cwd=workdir).stdout.strip()
    limited = procs.bastion(
        ["auth", "create-key", "--name", "limited", "--scopes", LIMITED_SCOPES], cwd=workdir
    ).stdout.strip()
    upstream = FaultyUpstream(upstream_port)
    stack = GatewayStack(workdir, port, upstream_port, admin_key, limited)
    try:
        stack.processes.append(start_bastion(workdir, port))
        yield FaultStack(stack, upstream)
    finally:
        upstream.stop()
        for process in stack.processes:
            procs.stop(process)


@pytest.mark.parametrize("path", ["/reset", "/garbage", "/closed-without-answer"])
def test_misbehaving_upstream_is_502_and_audited(faulty: FaultStack, path: str) -> None:
    response = faulty.stack.get(path, key=faulty.stack.limited_key)
    assert response.status_code == 502
    [event] = faulty.stack.audit_for(response.json()["requestId"])
    assert event["outcome"] == "failure"
    assert event["details"]["status"] == 502
    assert event["details"]["reason"] == "upstream_unavailable"


def test_upstream_down_is_502_and_audited(faulty: FaultStack) -> None:
    faulty.upstream.stop()
    response = faulty.stack.get("/anything", key=faulty.stack.limited_key)
    assert response.status_code == 502
    [event] = faulty.stack.audit_for(response.json()["requestId"])
    assert event["details"]["reason"] == "upstream_unavailable"


def test_denied_request_never_reaches_a_broken_upstream(faulty: FaultStack) -> None:
    assert faulty.stack.get("/reset").status_code == 401
