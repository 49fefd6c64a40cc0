"""Request smuggling: a request whose body has two readings never reaches the upstream.

A front proxy and bastion (or bastion and the upstream) that read one request's framing
differently see different requests: the rest of one body becomes a second request that no
one authorised. `bastion serve` refuses every ambiguous framing before anything is decided,
and re-frames what it forwards itself. Real process, bytes sent exactly as written.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.gwstack import GatewayStack, body_json, gateway_stack, raw_request

pytestmark = pytest.mark.e2e

HEAD = b"POST /api/patterns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

AMBIGUOUS = [
    pytest.param(
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
        id="content-length-and-transfer-encoding",
    ),
    pytest.param(b"Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}2345678", id="two-lengths"),
    pytest.param(b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", id="one-length-twice"),
    pytest.param(b"Content-Length: 2, 2\r\n\r\n{}", id="length-list"),
    pytest.param(b"Content-Length: +2\r\n\r\n{}", id="signed-length"),
    pytest.param(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        id="chunked-twice",
    ),
    pytest.param(b"Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", id="xchunked"),
    pytest.param(
        b"Transfer-Encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", id="space-before-colon"
    ),
    pytest.param(b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}", id="identity"),
    pytest.param(b"X-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}", id="obsolete-line-folding"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with gateway_stack(tmp_path_factory.mktemp("gw-smuggling")) as running:
        yield running


def auth(stack: GatewayStack) -> bytes:
    return b"Authorization: Bearer " + stack.limited_key.encode() + b"\r\n"


@pytest.mark.parametrize("rest", AMBIGUOUS)
def test_ambiguous_framing_is_refused_before_the_upstream(stack: GatewayStack, rest: bytes) -> None:
    before = stack.upstream_count()
    status, answer = raw_request(stack.port, HEAD + auth(stack) + rest)
    assert status == 400, answer[:300]
    assert b"content-type: application/problem+json" in answer.partition(b"\r\n\r\n")[0].lower()
    assert body_json(answer)["code"] == "bad_request"
    assert stack.upstream_count() == before


def test_transfer_encoding_in_http_1_0_is_refused(stack: GatewayStack) -> None:
    """RFC 9112 section 6.1: its framing is faulty (an HTTP/1.0 hop reads no chunks)."""
    before = stack.upstream_count()
    request = HEAD.replace(b"HTTP/1.1", b"HTTP/1.0") + auth(stack)
    request += b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    status, answer = raw_request(stack.port, request)
    assert status == 400, answer[:300]
    assert body_json(answer)["detail"] == "an HTTP/1.0 request cannot have a Transfer-Encoding"
    assert stack.upstream_count() == before


def test_a_pipelined_request_is_decided_on_its_own(stack: GatewayStack) -> None:
    """Bytes after a body are the next request, authorised by itself: the key in the first
    one does not carry the second to a route it may not use."""
    before = stack.upstream_count()
    request = HEAD + auth(stack) + b"Content-Length: 2\r\n\r\n{}"
    request += b"GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    _, answer = raw_request(stack.port, request)
    statuses = [line.split(b" ")[1] for line in answer.split(b"\r\n") if line.startswith(b"HTTP/")]
    assert statuses == [b"200", b"401"]
    assert stack.upstream_count() == before + 1
