"""Input validation at the edge (in process): refused before the upstream is ever contacted.

The upstream address has nothing listening, so any request that got through would be 502.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from bastion.gateway.own_apps import ADMIN_API_MAX_BODY, AUTH_MAX_BODY
from tests.gateway.conftest import Gateway, GatewayFactory

LIMITS = {
    "security": {
        "inputValidation": {
            "maxSize": "100B",
            "maxJsonDepth": 4,
            "allowedContentTypes": ["application/json"],
        }
    }
}


def test_oversized_declared_body_is_413(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b"{}" + b" " * 200,
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"


def test_oversized_body_refused_before_authentication(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns", content=b"x" * 500, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413


def test_wrong_content_type_is_415(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b"a=b",
            headers={**gw.auth(), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 415


def test_json_over_max_json_size_is_400_and_over_max_size_413(gateway: GatewayFactory) -> None:
    limits = {"security": {"inputValidation": {"maxSize": "100B", "maxJsonSize": "50B"}}}
    with gateway(limits) as gw:
        headers = {**gw.auth(), "Content-Type": "application/json"}
        within_size = b'{"text": "' + b"a" * 60 + b'"}'
        response = gw.client.post("/api/patterns", content=within_size, headers=headers)
        assert response.status_code == 400
        [event] = [
            e for e in gw.events() if e.request.get("requestId") == response.json()["requestId"]
        ]
        assert event.details["reason"] == "json_too_large"
        over_size = b'{"text": "' + b"a" * 200 + b'"}'
        assert (
            gw.client.post("/api/patterns", content=over_size, headers=headers).status_code == 413
        )


@pytest.mark.parametrize("body", [b"[[[[[1]]]]]", b'{"a":{"b":{"c":{"d":{"e":1}}}}}'])
def test_deep_json_is_400(gateway: GatewayFactory, body: bytes) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns", content=body, headers={**gw.auth(), "Content-Type": "application/json"}
        )
        assert response.status_code == 400
        [event] = [
            e for e in gw.events() if e.request.get("requestId") == response.json()["requestId"]
        ]
        assert event.details["reason"] == "json_too_deep"


def test_valid_json_goes_on_to_the_upstream(gateway: GatewayFactory) -> None:
    with gateway(LIMITS) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b'{"a": [1]}',
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == 502  # got through: nothing listens upstream


UNTYPED = b'{"name": "<script>alert(1)</script>", "name": "dup", "x": NaN}'


@pytest.mark.parametrize(
    "validation",
    [{}, {"sanitize": {"html": True}}, {"sanitize": {"scripts": True}}],
    ids=["json-checks", "sanitize-html", "sanitize-scripts"],
)
def test_json_body_without_content_type_cannot_skip_the_json_checks(
    gateway: GatewayFactory, validation: dict[str, Any]
) -> None:
    """Sent without a Content-Type, a body with duplicate keys, NaN and a script went to the
    upstream raw, and many frameworks read an untyped body as JSON."""
    with gateway({"security": {"inputValidation": validation}}) as gw:
        for headers in ({}, {"Content-Type": ""}):
            response = gw.client.post(
                "/api/patterns", content=UNTYPED, headers={**gw.auth(), **headers}
            )
            assert response.status_code == 415
            problem = response.json()
            assert problem["code"] == "unsupported_media_type"
            assert "must say its Content-Type" in problem["detail"]
            [event] = [e for e in gw.events() if e.request.get("requestId") == problem["requestId"]]
            assert (event.action, event.details["status"]) == ("request.reject", 415)


@pytest.mark.parametrize(
    "content_type", ["application/json, text/plain", "text/plain,application/json"]
)
def test_content_type_listing_two_types_cannot_skip_the_json_checks(
    gateway: GatewayFactory, content_type: str
) -> None:
    """One line listing two types is two Content-Type headers (RFC 9110 section 5.3): bastion
    read ``application/json, text/plain`` as not JSON and passed the body on unchecked."""
    with gateway() as gw:
        headers = {**gw.auth(), "Content-Type": content_type}
        response = gw.client.post("/api/patterns", content=UNTYPED, headers=headers)
        assert response.status_code == 400
        assert response.json()["detail"] == "request has more than one Content-Type header"


def test_a_quoted_comma_in_a_content_type_parameter_is_one_type(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        headers = {**gw.auth(), "Content-Type": 'multipart/form-data; boundary="a,b"'}
        response = gw.client.post("/api/patterns", content=b"--a,b--\r\n", headers=headers)
        assert response.status_code == 502  # got through: nothing listens upstream


def test_untyped_body_is_refused_before_authentication(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.post("/api/patterns", content=b"{}")
        assert response.status_code == 415


def test_request_without_a_body_needs_no_content_type(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        assert gw.client.get("/api/patterns", headers=gw.auth()).status_code == 502
        assert gw.client.post("/api/patterns", headers=gw.auth()).status_code == 502


def test_disabled_validation_checks_nothing(gateway: GatewayFactory) -> None:
    extra = {"security": {"inputValidation": {"enabled": False, "maxSize": "10B"}}}
    with gateway(extra) as gw:
        response = gw.client.post(
            "/api/patterns",
            content=b"[" * 100,
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
        assert response.status_code == 502


def _post_streamed(
    gw: Gateway, path: str, *, chunk: int, chunks: int, declared: int | None = None
) -> tuple[int, int, dict[str, Any]]:
    """POST ``chunks`` chunks of ``chunk`` bytes to the edge, unauthenticated, straight through
    ASGI: (status, chunks the app pulled, the problem body). ``declared`` sends that
    Content-Length; without it the body is chunked."""
    pulled = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal pulled
        if pulled < chunks:
            pulled += 1
            return {"type": "http.request", "body": b" " * chunk, "more_body": pulled < chunks}
        await asyncio.sleep(60)  # a client that sent everything and waits
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    length = [(b"content-length", str(declared).encode())] if declared is not None else []
    chunked = [] if declared is not None else [(b"transfer-encoding", b"chunked")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", (FORM if path.endswith("/token") else "application/json").encode()),
            *length,
            *chunked,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    assert gw.client.portal is not None
    gw.client.portal.call(gw.client.app, scope, receive, send)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], pulled, json.loads(body)


OWN_ENDPOINTS = [
    ("/_bastion/api/v1/users", ADMIN_API_MAX_BODY),
    ("/_bastion/api/v1/apikeys", ADMIN_API_MAX_BODY),
    ("/_bastion/login", AUTH_MAX_BODY),
    ("/_bastion/oauth/token", AUTH_MAX_BODY),
]
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(("path", "limit"), OWN_ENDPOINTS)
def test_unauthenticated_client_cannot_make_bastion_hold_a_huge_declared_body(
    gateway: GatewayFactory, path: str, limit: int
) -> None:
    """Bastion's own endpoints read a body whole before they authenticate: a declared length
    over their cap is 413 before a byte is read, and audited."""
    with gateway() as gw:
        status, pulled, problem = _post_streamed(
            gw, path, chunk=1 << 20, chunks=300, declared=300 << 20
        )
        [event] = [e for e in gw.events() if e.request.get("requestId") == problem["requestId"]]
    assert (status, pulled) == (413, 0)
    assert problem["code"] == "payload_too_large"
    assert problem["detail"] == f"the body exceeds {limit:,} bytes"
    assert event.details["status"] == 413


@pytest.mark.parametrize(("path", "limit"), OWN_ENDPOINTS)
def test_unauthenticated_client_cannot_make_bastion_hold_a_huge_chunked_body(
    gateway: GatewayFactory, path: str, limit: int
) -> None:
    """Without a length, the body is cut off as it passes the cap: bastion stops reading."""
    chunk = limit // 4
    with gateway() as gw:
        status, pulled, problem = _post_streamed(gw, path, chunk=chunk, chunks=1000)
    assert status == 413
    assert pulled == 5  # the chunk that passes the cap is the last one read
    assert problem["code"] == "payload_too_large"
    assert problem["detail"] == f"the body exceeds {limit:,} bytes"


def test_an_admin_api_body_within_the_cap_is_read_as_before(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        body = json.dumps({"name": "dora@example.com", "password": "x" * 100_000}).encode()
        response = gw.client.post(
            "/_bastion/api/v1/users",
            content=body,
            headers={**gw.auth(), "Content-Type": "application/json"},
        )
    assert response.status_code == 400  # read and judged (too long a password), not refused
    assert response.json()["code"] != "payload_too_large"
