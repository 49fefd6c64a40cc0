"""Input validation, response headers, CORS and WebSocket pass-through, through real processes."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.e2e.gwstack import (
    LIMITED_SCOPES,
    GatewayStack,
    answer_within,
    body_json,
    gateway_stack,
    raw_get,
    raw_request,
)

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.example.com"
CONFIG = {
    "security": {
        "inputValidation": {
            "maxSize": "1KB",
            "allowedContentTypes": ["application/json", "text/plain"],
            "maxJsonDepth": 8,
            "sanitize": {"html": True},
        }
    },
    "gateway": {
        "cors": {"enabled": True, "allowOrigins": [ORIGIN], "allowCredentials": True},
        "timeouts": {"read": "2s", "requestHead": "2s", "requestBody": "2s"},
        "websocket": {"recheck": "1s"},
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-inputs"), CONFIG) as running:
        yield running


def post(stack: GatewayStack, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.limited_key}"}
    if content_type:
        headers["Content-Type"] = content_type
    return httpx.post(stack.base + "/api/patterns", content=body, headers=headers, timeout=10)


def test_oversized_body_refused_before_upstream(stack: GatewayStack) -> None:
    before = stack.upstream_count()
    response = post(stack, b"x" * 5000, "text/plain")
    assert response.status_code == 413
    assert stack.upstream_count() == before
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["details"]["reason"] == "payload_too_large"


def test_oversized_chunked_body_refused_while_streaming(stack: GatewayStack) -> None:
    before = stack.upstream_count()
    chunk = b"y" * 600
    request = (
        b"POST /api/patterns HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + stack.limited_key.encode() + b"\r\n"
        b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4))
        + b"0\r\n\r\n"
    )
    status, _ = raw_request(stack.port, request)
    assert status == 413
    assert stack.upstream_count() == before


def chunked_post(stack: GatewayStack, transfer_encoding: bytes, body: bytes) -> tuple[int, bytes]:
    request = (
        b"POST /api/patterns HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + stack.limited_key.encode() + b"\r\n"
        b"Content-Type: text/plain\r\nTransfer-Encoding: " + transfer_encoding + b"\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    return raw_request(stack.port, request)


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"identity, chunked", b"deflate,chunked"])
def test_transfer_coding_other_than_chunked_is_501_not_forwarded_unlabelled(
    stack: GatewayStack, coding: bytes
) -> None:
    before = stack.upstream_count()
    status, response = chunked_post(stack, coding, gzip.compress(b"hello"))
    assert status == 501
    problem = body_json(response)
    assert problem["code"] == "unsupported_transfer_coding"
    assert stack.upstream_count() == before
    [event] = stack.audit_for(problem["requestId"])
    assert event["details"] == {"reason": "unsupported_transfer_coding", "status": 501}


def test_second_content_type_is_400_not_a_type_the_upstream_reads_unchecked(
    stack: GatewayStack,
) -> None:
    before = stack.upstream_count()
    request = (
        b"POST /api/patterns HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + stack.limited_key.encode() + b"\r\n"
        b"Content-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n"
        b"<b/>!"
    )
    status, response = raw_request(stack.port, request)
    assert status == 400
    assert body_json(response)["detail"] == "request has more than one Content-Type header"
    assert stack.upstream_count() == before


def test_chunked_body_in_any_case_streams_to_upstream(stack: GatewayStack) -> None:
    status, response = chunked_post(stack, b"Chunked", b"plain")
    assert status == 200
    assert body_json(response)["body"] == "plain"


def test_body_within_limit_streams_to_upstream(stack: GatewayStack) -> None:
    response = post(stack, b"z" * 900, "text/plain")
    assert response.status_code == 200
    assert response.json()["body"] == "z" * 900


def test_wrong_content_type_refused(stack: GatewayStack) -> None:
    before = stack.upstream_count()
    response = post(stack, b"<xml/>", "application/xml")
    assert response.status_code == 415
    assert post(stack, b"abc", None).status_code == 415
    assert stack.upstream_count() == before


def test_deep_json_refused_before_upstream(stack: GatewayStack) -> None:
    before = stack.upstream_count()
    response = post(stack, b"[" * 20 + b"]" * 20, "application/json")
    assert response.status_code == 400
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["details"]["reason"] == "json_too_deep"
    assert stack.upstream_count() == before


@pytest.mark.parametrize(
    "body", [b'{"a": 1, "a": 2}', b'{"a": NaN}', b"{not json", b'"\xff"'], ids=str
)
def test_malformed_or_ambiguous_json_refused(stack: GatewayStack, body: bytes) -> None:
    before = stack.upstream_count()
    assert post(stack, body, "application/json").status_code == 400
    assert stack.upstream_count() == before


def test_html_in_json_strings_is_sanitised(stack: GatewayStack) -> None:
    document = {"name": "<b>ok</b><script>alert(1)</script>", "n": [1, "<img src=x onerror=y>"]}
    response = post(stack, json.dumps(document).encode(), "application/json; charset=utf-8")
    assert response.status_code == 200
    received = json.loads(response.json()["body"])
    assert received == {"name": "ok", "n": [1, ""]}


def test_security_headers_on_proxied_and_own_responses(stack: GatewayStack) -> None:
    for response in (
        stack.get("/api/patterns", key=stack.limited_key),
        stack.get("/api/patterns"),
        stack.get("/_bastion/health"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers  # plain HTTP


def test_cors_preflight_allowed_origin(stack: GatewayStack) -> None:
    response = httpx.options(
        stack.base + "/api/patterns",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=5,
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_cors_preflight_other_origin_refused(stack: GatewayStack) -> None:
    response = httpx.options(
        stack.base + "/api/patterns",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=5,
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_cors_headers_on_actual_responses(stack: GatewayStack) -> None:
    allowed = stack.get("/api/patterns", key=stack.limited_key, headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    denied = stack.get("/api/patterns", headers={"Origin": ORIGIN})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == ORIGIN
    other = stack.get("/api/patterns", key=stack.limited_key, headers={"Origin": "https://x.y"})
    assert "access-control-allow-origin" not in other.headers


def test_slow_upstream_is_504_and_audited(stack: GatewayStack) -> None:
    response = stack.get("/slow?s=5", key=stack.limited_key)
    assert response.status_code == 504
    [event] = stack.audit_for(response.json()["requestId"])
    assert event["details"]["reason"] == "upstream_timeout"
    assert event["details"]["status"] == 504


def test_websocket_pass_through_with_identity(stack: GatewayStack) -> None:
    async def talk() -> list[str]:
        url = f"ws://127.0.0.1:{stack.port}/ws"
        headers = {"Authorization": f"Bearer {stack.limited_key}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            greeting = await ws.recv()
            await ws.send("ping")
            echoed = await ws.recv()
            await ws.send(b"\x00\x01")
            binary = await ws.recv()
            return [str(greeting), str(echoed), repr(binary)]

    assert asyncio.run(talk()) == ["hello admin@example.com", "echo ping", repr(b"\x00\x01")]
    upgrades = [e for e in stack.audit() if e["details"].get("status") == 101]
    assert upgrades and upgrades[-1]["outcome"] == "success"


def test_websocket_handshake_never_passes_reserved_headers(stack: GatewayStack) -> None:
    spoofed = [
        "X-HTTP-Method-Override",
        "X-Rewrite-URL",
        "X-Original-URL",
        "True-Client-IP",
        "X-SSL-Client-S-DN",
        "X-Authenticated-User",
        "X_Forwarded_User",
        "Cf-Access-Authenticated-User-Email",
        "X-Bastion-Principal",
    ]

    async def handshake_headers() -> list[list[str]]:
        url = f"ws://127.0.0.1:{stack.port}/ws"
        headers = [("Authorization", f"Bearer {stack.limited_key}")]
        headers += [(name, "mallory") for name in spoofed]
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.recv()  # the greeting
            await ws.send("headers")
            return list(json.loads(await ws.recv()))

    received = asyncio.run(handshake_headers())
    assert not any("mallory" in value for _, value in received)
    assert [v for k, v in received if k == "x-bastion-principal"] == ["admin@example.com"]
    assert [v for k, v in received if k == "x-forwarded-host"] == [f"127.0.0.1:{stack.port}"]


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong", 401)])
def test_websocket_handshake_denied(stack: GatewayStack, key: str | None, status: int) -> None:
    async def attempt() -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with websockets.connect(
                f"ws://127.0.0.1:{stack.port}/ws", additional_headers=headers
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt()) == status


def test_websocket_to_route_not_allowed_is_403(stack: GatewayStack) -> None:
    async def attempt() -> int:
        headers = {"Authorization": f"Bearer {stack.limited_key}"}
        try:
            async with websockets.connect(
                f"ws://127.0.0.1:{stack.port}/admin/ws", additional_headers=headers
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt()) == 403


def test_websocket_message_over_max_size_closes_1009_and_is_not_forwarded(
    stack: GatewayStack,
) -> None:
    async def talk() -> tuple[str, int | None]:
        url = f"ws://127.0.0.1:{stack.port}/ws"
        headers = {"Authorization": f"Bearer {stack.limited_key}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.recv()  # the greeting
            await ws.send("x" * 900)  # within maxSize (1KB): relayed
            echoed = str(await ws.recv())
            await ws.send("y" * 2000)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return echoed, closed.value.rcvd.code if closed.value.rcvd else None

    echoed, code = asyncio.run(talk())
    assert echoed == "echo " + "x" * 900
    assert code == 1009


def test_open_websocket_ends_1008_once_its_key_is_revoked(stack: GatewayStack) -> None:
    key = stack.cli("auth", "create-key", "--name", "ws-revoked", "--scopes", LIMITED_SCOPES)
    key = key.strip()

    async def talk() -> tuple[str, int | None]:
        url = f"ws://127.0.0.1:{stack.port}/ws"
        async with websockets.connect(url, additional_headers={"X-API-Key": key}) as ws:
            await ws.recv()  # the greeting
            await asyncio.sleep(2.5)  # rechecked at least twice, still allowed
            await ws.send("before")
            before = str(await ws.recv())
            await asyncio.to_thread(stack.cli, "auth", "revoke-key", "ws-revoked")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                for _ in range(50):  # bounded: ends within seconds of the revocation
                    await ws.send("after")  # relayed until the next recheck
                    await asyncio.wait_for(ws.recv(), timeout=0.5)
                    await asyncio.sleep(0.2)
            return before, closed.value.rcvd.code if closed.value.rcvd else None

    before, code = asyncio.run(talk())
    assert (before, code) == ("echo before", 1008)
    [ended] = [e for e in stack.audit() if e["details"].get("closed") == 1008]
    assert ended["outcome"] != "success"
    assert ended["details"]["mode"] == "websocket"
    assert ended["details"]["status"] == 401


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def _send_endless(port: int, start: bytes, filler: bytes, *, most: int) -> tuple[int, bytes]:
    """Send ``start`` then ``filler`` until the server stops taking it (or ``most`` bytes
    went): (bytes sent, the answer)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(start)
        try:
            while sent < most:
                sock.sendall(filler)
                sent += len(filler)
        except OSError:  # reset or timed out: the server closed the connection
            pass
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return sent, answer


@pytest.mark.parametrize(
    ("start", "filler"),
    [
        (b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\n", b"X-Pad: " + b"a" * 8000 + b"\r\n"),
        (b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\nX-Big: ", b"a" * 65536),
        (b"GET /", b"a" * 65536),
    ],
    ids=["many-headers", "one-endless-header", "endless-request-line"],
)
def test_an_endless_request_head_is_431_before_it_fills_memory(
    stack: GatewayStack, start: bytes, filler: bytes
) -> None:
    """uvicorn's httptools protocol buffers a head without limit (200 MB of one header took
    the process to 637 MB): bastion answers 431 once a head passes 64 KiB and closes."""
    pid = stack.processes[-1].pid
    before = _peak_rss_kib(pid)
    sent, answer = _send_endless(stack.port, start, filler, most=64 << 20)
    assert answer.startswith(b"HTTP/1.1 431 ")
    problem = body_json(answer)
    assert problem["code"] == "headers_too_large"
    assert problem["detail"] == "the request line and headers exceed 65,536 bytes"
    assert sent < 64 << 20  # the connection was closed, not read to the end
    assert _peak_rss_kib(pid) - before < 32 * 1024


def test_a_head_within_the_limit_is_served(stack: GatewayStack) -> None:
    status, _ = raw_get(stack.port, b"/_bastion/health", [(b"X-Pad", b"b" * 30_000)])
    assert status == 200


def test_a_request_httptools_cannot_parse_is_problem_json(stack: GatewayStack) -> None:
    status, answer = raw_get(stack.port, b"/_bastion/health", [(b"X-Ctl", b"a\x01b")])
    assert status == 400
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert b"content-type: application/problem+json" in head
    problem = body_json(answer)
    assert problem["code"] == "bad_request"
    assert problem["detail"] == "the request is not valid HTTP/1.1"
    assert head.count(problem["requestId"].encode()) == 1  # X-Bastion-Request-Id


def test_a_partial_request_head_is_408_once_request_head_time_is_up(stack: GatewayStack) -> None:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        sock.sendall(b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\n")
        answer = answer_within(sock, 20)
    assert answer.startswith(b"HTTP/1.1 408 ")
    problem = body_json(answer)
    assert problem["code"] == "request_timeout"
    assert problem["detail"] == "the request head did not arrive within 2s"


def test_a_slowloris_trickle_cannot_hold_a_connection_open(stack: GatewayStack) -> None:
    """A byte every half second keeps no connection: the head's time runs from the opening."""
    head = b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    sent = 0
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        with contextlib.suppress(OSError):
            for byte in head:  # bounded: 250 bytes at most, about two minutes
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.5)
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (and closes)
        answer = answer_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert sent < len(head)


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(stack: GatewayStack) -> None:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        assert answer_within(sock, 20) == b""


def test_a_later_request_on_a_kept_alive_connection_has_its_own_head_time(
    stack: GatewayStack,
) -> None:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        time.sleep(1.5)  # most of the first head's time gone before it starts
        sock.sendall(b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        time.sleep(1.5)  # within uvicorn's keep-alive timeout (5 s)
        sock.sendall(b"GET /_bastion/health HTTP/1.1\r\nHost: x\r\n")
        second = answer_within(sock, 20)
    answers = first + second
    assert answers.startswith(b"HTTP/1.1 200 ")
    assert answers.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 408 " in answers


@pytest.mark.parametrize(
    ("path", "content_type", "authorised"),
    [
        ("/api/patterns", "application/json", True),  # read whole and checked
        ("/api/patterns", "text/plain", True),  # streamed to the upstream
        ("/_bastion/login", "application/json", False),
        ("/_bastion/api/v1/users", "application/json", False),
    ],
    ids=["proxied-json", "proxied-stream", "login", "admin-api"],
)
def test_a_trickled_body_is_408_once_request_body_time_is_up(
    stack: GatewayStack, path: str, content_type: str, authorised: bool
) -> None:
    """A client that sends a head at once and its body a little at a time holds no request:
    the body has gateway.timeouts.requestBody from its first read."""
    before = stack.upstream_count()
    auth = b"Authorization: Bearer " + stack.limited_key.encode() + b"\r\n" if authorised else b""
    head = (
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: "
        + content_type.encode()
        + b"\r\nContent-Length: 1000\r\n\r\n"
    )
    sent = 0
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        sock.sendall(head + b'{"a": "')
        with contextlib.suppress(OSError):
            for _ in range(120):  # bounded: a byte every half second, a minute at most
                if select.select([sock], [], [], 0.5)[0]:
                    break  # the server answered
                sock.sendall(b"x")
                sent += 1
        answer = answer_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    problem = body_json(answer)
    assert problem["code"] == "request_timeout"
    assert sent < 120
    if authorised:  # a proxied request's deny says why in the audit trail only
        [event] = stack.audit_for(problem["requestId"])
        assert (event["details"]["status"], event["details"]["reason"]) == (408, "request_timeout")
        assert "detail" not in problem
    else:
        assert problem["detail"] == "the request body did not arrive within 2s"
    if content_type == "application/json":
        assert stack.upstream_count() == before
