"""gateway.connections: one host cannot hold every connection of `bastion serve` (real process).

Loopback answers on all of 127.0.0.0/8, so a test is several clients by binding its sockets to
127.0.0.1, 127.0.0.2, ... (the stack caps 3 connections a client and 5 in all). With
``--workers 2`` the caps are the server's, not each worker's: the workers share their counts, and
a scrape of the metrics reports every worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.e2e.gwstack import (
    GatewayStack,
    answer_within,
    body_json,
    gateway_stack,
    stopped,
    worker_pids,
)

pytestmark = pytest.mark.e2e

PER_CLIENT, MAX = 3, 5
CONFIG = {"gateway": {"connections": {"max": MAX, "perClient": PER_CLIENT}}}
OBSERVER = "127.0.0.9"  # reads the metrics; its own connection counts while it does
HEALTH = b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-connections"), CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    """`bastion serve --workers 2`: the kernel hands each connection to either worker."""
    workdir = tmp_path_factory.mktemp("gw-connections-workers")
    with gateway_stack(workdir, CONFIG, bastion_args=["--workers", "2"]) as running:
        yield running


def metrics(stack: GatewayStack) -> str:
    transport = httpx.HTTPTransport(local_address=OBSERVER)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(stack.base + "/_bastion/metrics").text


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_until_open(stack: GatewayStack, count: int) -> None:
    """Wait until bastion counts ``count`` connections besides the observer's own."""
    deadline = time.monotonic() + 10
    while (seen := metric(metrics(stack), "bastion_connections_open") - 1) != count:
        assert time.monotonic() < deadline, f"{seen} connections open, expected {count}"
        time.sleep(0.05)


def connect(stack: GatewayStack, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.port), 10, (source, 0))


@contextlib.contextmanager
def idle(stack: GatewayStack, *sources: str) -> Iterator[list[socket.socket]]:
    """Connections that ask nothing (yet), one from each of ``sources``, counted by bastion."""
    socks = [connect(stack, source) for source in sources]
    try:
        wait_until_open(stack, len(socks))
        yield socks
    finally:
        for sock in socks:
            sock.close()
        wait_until_open(stack, 0)


def ask(sock: socket.socket, request: bytes = HEALTH) -> bytes:
    sock.sendall(request)
    return answer_within(sock, 10)


def ask_from(stack: GatewayStack, source: str) -> bytes:
    with connect(stack, source) as sock:
        return ask(sock)


def test_one_client_cannot_hold_more_than_its_share(stack: GatewayStack) -> None:
    with idle(stack, *["127.0.0.1"] * PER_CLIENT) as held:
        refused = ask_from(stack, "127.0.0.1")
        assert refused.startswith(b"HTTP/1.1 429 "), refused[:200]
        head = refused.partition(b"\r\n\r\n")[0].lower()
        assert b"content-type: application/problem+json" in head
        assert b"retry-after: 1" in head
        problem = body_json(refused)
        assert problem["code"] == "too_many_connections"
        assert head.count(problem["requestId"].encode()) == 1  # X-Bastion-Request-Id
        # Another client is served meanwhile, and so is this one once it lets one go.
        assert ask_from(stack, "127.0.0.2").startswith(b"HTTP/1.1 200 ")
        held.pop().close()
        wait_until_open(stack, PER_CLIENT - 1)
        assert ask_from(stack, "127.0.0.1").startswith(b"HTTP/1.1 200 ")


def kept_open(stack: GatewayStack, source: str) -> socket.socket:
    """A connection that was served (so a running worker holds it) and stays open."""
    sock = connect(stack, source)
    sock.settimeout(10)
    sock.sendall(b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    return sock


def test_with_workers_one_client_is_held_to_its_share_by_all_of_them(
    workers: GatewayStack,
) -> None:
    """Each worker in turn is stopped so that the other accepts; no metrics are read, as a
    stopped worker would still count a scrape's connection that closed meanwhile."""
    first, second = worker_pids(workers)
    held: list[socket.socket] = []
    try:
        with stopped(first):
            held += [kept_open(workers, "127.0.0.1") for _ in range(PER_CLIENT - 1)]
        with stopped(second):
            # The first worker holds none of these but knows of them: one more, then no more.
            held.append(kept_open(workers, "127.0.0.1"))
            refused = ask_from(workers, "127.0.0.1")
            assert refused.startswith(b"HTTP/1.1 429 "), refused[:200]
            assert ask_from(workers, "127.0.0.2").startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while not ask_from(workers, "127.0.0.1").startswith(b"HTTP/1.1 200 "):
        assert time.monotonic() < deadline, "the closed connections were never given back"
        time.sleep(0.05)


def test_with_workers_one_scrape_adds_up_every_workers_metrics(workers: GatewayStack) -> None:
    """Each worker keeps its own counts; whichever answers a scrape reports them all."""
    served = 'bastion_requests_total{mode="proxy",status="2xx"}'
    auth = {"Authorization": f"Bearer {workers.limited_key}"}
    before = metric(metrics(workers), served)
    for pid in worker_pids(workers):
        transport = httpx.HTTPTransport(local_address="127.0.0.5")
        with stopped(pid), httpx.Client(transport=transport, timeout=10) as client:
            for _ in range(10):  # one kept-alive connection: the worker not stopped serves all
                response = client.get(
                    workers.base + "/api/patterns/content-classifier", headers=auth
                )
                assert response.status_code == 200
    # A worker counts a request once its answer is sent: wait for the last one to be counted.
    deadline = time.monotonic() + 10
    while metric(metrics(workers), served) != before + 20:
        assert time.monotonic() < deadline, "the requests were never all counted"
        time.sleep(0.05)
    for pid in worker_pids(workers):
        with stopped(pid):
            text = metrics(workers)
        assert metric(text, served) == before + 20
        assert metric(text, "bastion_rate_limit_store_up") == 1


@pytest.mark.parametrize("serving", ["stack", "workers"], ids=["one-process", "two-workers"])
def test_all_clients_together_cannot_pass_max(serving: str, request: pytest.FixtureRequest) -> None:
    stack: GatewayStack = request.getfixturevalue(serving)
    # The observer's connection would be over the cap too: it sees all but the last one.
    sources = ["127.0.0.1"] * PER_CLIENT + ["127.0.0.2"] * (MAX - PER_CLIENT - 1)
    with idle(stack, *sources), connect(stack, "127.0.0.2"):
        deadline = time.monotonic() + 10
        while (answer := ask_from(stack, "127.0.0.3")).startswith(b"HTTP/1.1 200 "):
            assert time.monotonic() < deadline, "the last idle connection was never counted"
            time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert body_json(answer)["code"] == "server_busy"
    assert ask_from(stack, "127.0.0.3").startswith(b"HTTP/1.1 200 ")


def test_a_silent_connection_over_the_cap_is_closed_at_once(stack: GatewayStack) -> None:
    """It is not counted, so it must not linger for the request-head time (30 s) either."""
    with idle(stack, *["127.0.0.1"] * PER_CLIENT), connect(stack, "127.0.0.1") as extra:
        started = time.monotonic()
        extra.settimeout(10)
        assert extra.recv(65536) == b""  # closed without an answer
        assert time.monotonic() - started < 5


def test_refusals_are_counted_by_reason(stack: GatewayStack) -> None:
    before = metrics(stack)
    with idle(stack, *["127.0.0.1"] * PER_CLIENT):
        assert ask_from(stack, "127.0.0.1").startswith(b"HTTP/1.1 429 ")
    after = metrics(stack)
    name = 'bastion_connections_refused_total{reason="per_client"}'
    assert metric(after, name) == metric(before, name) + 1


def test_a_websocket_keeps_its_place_until_it_closes(stack: GatewayStack) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        headers = {"Authorization": f"Bearer {stack.limited_key}"}
        url = f"ws://127.0.0.1:{stack.port}/ws"
        sockets = [
            await websockets.connect(url, additional_headers=headers, local_addr=("127.0.0.1", 0))
            for _ in range(PER_CLIENT)
        ]
        for ws in sockets:
            assert str(await ws.recv()).startswith("hello ")
        await asyncio.to_thread(wait_until_open, stack, PER_CLIENT)
        while_open = await asyncio.to_thread(ask_from, stack, "127.0.0.1")
        await sockets.pop().close()
        await asyncio.to_thread(wait_until_open, stack, PER_CLIENT - 1)
        after_close = await asyncio.to_thread(ask_from, stack, "127.0.0.1")
        for ws in sockets:
            await ws.close()
        return while_open, after_close

    while_open, after_close = asyncio.run(scenario())
    wait_until_open(stack, 0)
    assert while_open.startswith(b"HTTP/1.1 429 "), while_open[:200]
    assert after_close.startswith(b"HTTP/1.1 200 "), after_close[:200]
