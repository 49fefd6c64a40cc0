"""gateway.connections when bastion serves TLS itself (real process): a connection is counted
as it is accepted, before its handshake, so a host opening connections and sending no
ClientHello is held to its share like any other, and a handshake is bounded by
``gateway.timeouts.requestHead``. Before, a TLS connection was counted only once its
handshake was done and could wait 60 s for it, so one host could hold every descriptor.

Clients are told apart by binding to 127.0.0.1, 127.0.0.2, ... (see test_gateway_connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.gwstack import GatewayStack, answer_within, gateway_stack
from tests.e2e.test_mtls_e2e import Authority

pytestmark = pytest.mark.e2e

PER_CLIENT, MAX, HEAD_SECONDS = 3, 6, 2
OBSERVER = "127.0.0.9"  # reads the metrics; its own connection counts while it does
REFUSED = 'bastion_connections_refused_total{reason="%s"}'


@dataclass
class TlsStack:
    stack: GatewayStack
    trust: ssl.SSLContext

    def client(self, source: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=source, verify=self.trust)
        return httpx.Client(transport=transport, timeout=10)

    def metrics(self) -> str:
        with self.client(OBSERVER) as client:
            return client.get(self.stack.base + "/_bastion/metrics").text

    def metric(self, name: str) -> float:
        found = re.search(rf"^{re.escape(name)} (\S+)$", self.metrics(), re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def wait_until_open(self, count: int) -> None:
        """Until bastion counts ``count`` connections besides the observer's own."""
        deadline = time.monotonic() + 10
        while (seen := self.metric("bastion_connections_open") - 1) != count:
            assert time.monotonic() < deadline, f"{seen} connections open, expected {count}"
            time.sleep(0.05)

    def connect(self, source: str) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.stack.port), 10, (source, 0))

    def health_from(self, source: str) -> int:
        with self.client(source) as client:
            return client.get(self.stack.base + "/_bastion/health").status_code


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    directory = tmp_path_factory.mktemp("gw-connections-tls")
    pki = directory / "pki"
    pki.mkdir()
    authority = Authority(pki, "connections-ca")
    server = authority.issue("server", "bastion.test", server=True)
    trust = ssl.create_default_context(cafile=str(authority.issued.cert))
    config = {
        "gateway": {
            "connections": {"max": MAX, "perClient": PER_CLIENT},
            "timeouts": {"requestHead": f"{HEAD_SECONDS}s"},
        },
        "security": {
            "mtls": {
                "enabled": True,
                "serverCert": str(server.cert),
                "serverKey": str(server.key),
                "clientAuth": "none",
            }
        },
    }
    with gateway_stack(directory / "work", config, tls_verify=trust) as stack:
        yield TlsStack(stack, trust)


@contextlib.contextmanager
def silent(tls: TlsStack, *sources: str) -> Iterator[list[socket.socket]]:
    """TCP connections that never start a handshake, one from each of ``sources``."""
    socks = [tls.connect(source) for source in sources]
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` without a word (fails after ``seconds``)."""
    started = time.monotonic()
    assert answer_within(sock, seconds) == b""
    elapsed = time.monotonic() - started
    assert elapsed < seconds, "the connection was still open"
    return elapsed


def test_connections_without_a_client_hello_are_counted_and_capped_per_client(
    tls: TlsStack,
) -> None:
    with silent(tls, *["127.0.0.1"] * PER_CLIENT):
        tls.wait_until_open(PER_CLIENT)  # counted before any handshake
        before = tls.metric(REFUSED % "per_client")
        with tls.connect("127.0.0.1") as extra:
            closed_within(extra, 5)  # over the cap: closed at once, not after 60 s
        assert tls.metric(REFUSED % "per_client") == before + 1
        assert tls.health_from("127.0.0.2") == 200  # another host is served meanwhile
    tls.wait_until_open(0)
    assert tls.health_from("127.0.0.1") == 200


def test_a_handshake_that_never_starts_ends_with_the_request_head_time(tls: TlsStack) -> None:
    before = tls.metric(REFUSED % "tls_handshake")
    with silent(tls, "127.0.0.3") as (sock,):
        assert closed_within(sock, HEAD_SECONDS + 5) >= HEAD_SECONDS - 0.5
    tls.wait_until_open(0)
    assert tls.metric(REFUSED % "tls_handshake") == before + 1


def test_plain_http_on_the_tls_port_fails_its_handshake_and_gives_its_place_back(
    tls: TlsStack,
) -> None:
    before = tls.metric(REFUSED % "tls_handshake")
    for _ in range(PER_CLIENT + 2):
        with tls.connect("127.0.0.4") as sock:
            sock.sendall(b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" not in answer_within(sock, 5)
    tls.wait_until_open(0)
    assert tls.metric(REFUSED % "tls_handshake") == before + PER_CLIENT + 2
    assert tls.health_from("127.0.0.4") == 200


def test_served_tls_connections_are_counted_and_released(tls: TlsStack) -> None:
    with tls.client("127.0.0.5") as client:
        for _ in range(PER_CLIENT + 2):  # one kept-alive connection, counted once
            assert client.get(tls.stack.base + "/_bastion/health").status_code == 200
        tls.wait_until_open(1)
    tls.wait_until_open(0)


def test_the_start_line_names_https(tls: TlsStack) -> None:
    logs = "".join(path.read_text() for path in Path(tls.stack.workdir).glob("bastion*.log"))
    assert re.search(r"running on https://127\.0\.0\.1:\d+", logs), logs[-2000:]


def test_a_websocket_over_tls_is_relayed_and_keeps_its_place(tls: TlsStack) -> None:
    async def scenario() -> str:
        headers = {"Authorization": f"Bearer {tls.stack.limited_key}"}
        url = f"wss://127.0.0.1:{tls.stack.port}/ws"
        async with websockets.connect(
            url, ssl=tls.trust, additional_headers=headers, local_addr=("127.0.0.6", 0)
        ) as ws:
            greeting = str(await ws.recv())
            await asyncio.to_thread(tls.wait_until_open, 1)
            return greeting

    assert asyncio.run(scenario()).startswith("hello ")
    tls.wait_until_open(0)
