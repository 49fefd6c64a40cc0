"""Bastion's authentication endpoints answer failures with problem+json and the request's id:
a wrong method is a 405 with ``Allow``, a login failure carries the id the audit log has."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import GatewayFactory
from tests.gateway.problem_checks import problem


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/_bastion/login", "POST"),
        ("GET", "/_bastion/logout", "POST"),
        ("GET", "/_bastion/oauth/token", "POST"),
        ("GET", "/_bastion/oauth/revoke", "POST"),
        ("POST", "/.well-known/jwks.json", "GET, HEAD"),
        ("DELETE", "/.well-known/openid-configuration", "GET, HEAD"),
    ],
)
def test_auth_endpoint_method_not_allowed_is_problem_json_with_allow(
    gateway: GatewayFactory, method: str, path: str, allowed: str
) -> None:
    with gateway() as gw:
        response = gw.client.request(method, path)
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed


def test_login_failure_carries_request_id(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.post(
            "/_bastion/login", json={"username": "ghost@example.com", "password": "nope-1A!"}
        )
        body = problem(response, 401, "invalid_credentials")
        [event] = [e for e in gw.events() if e.request.get("requestId") == body["requestId"]]
    assert event.action == "login.failure"
    assert event.details["reason"] == "unknown_user"
    assert response.headers["www-authenticate"] == 'Bearer realm="bastion"'


@pytest.mark.parametrize(
    ("path", "content", "detail"),
    [
        ("/_bastion/login", b'{"username": ', "the body is not valid JSON (line 1, column 14)"),
        ("/_bastion/login", b"[" * 5000 + b"]" * 5000, "the body nests deeper than 8 levels"),
        ("/_bastion/login", b"\xff\xfe{}", "the body is not UTF-8 text"),
        ("/_bastion/login", b'{"username": "a"}', "password must be a non-empty string"),
        ("/_bastion/logout", b"{}", "refreshToken must be a non-empty string"),
        ("/_bastion/logout", b"[]", "the body must be a JSON object"),
        (
            "/_bastion/login",
            b'{"username": "admin@example.com", "password": "x", "username": "bob@example.com"}',
            'the body has the key "username" more than once in one object',
        ),
    ],
)
def test_malformed_login_or_logout_body_carries_request_id(
    gateway: GatewayFactory, path: str, content: bytes, detail: str
) -> None:
    with gateway() as gw:
        response = gw.client.post(
            path, content=content, headers={"Content-Type": "application/json"}
        )
    body = problem(response, 400)
    assert body["requestId"] != "-"
    assert body["detail"].startswith(detail)


@pytest.mark.parametrize("path", ["/_bastion/login", "/_bastion/logout"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_login_or_logout_body_not_declared_json_is_415(
    gateway: GatewayFactory, path: str, content_type: str | None
) -> None:
    """A browser sends text/plain to another site without asking it first; a login is never
    such a request, and the admin API refuses the same."""
    body = b'{"username": "admin@example.com", "password": "x", "refreshToken": "brt_x"}'
    headers = {"Content-Type": content_type} if content_type else {}
    with gateway() as gw:
        response = gw.client.post(path, content=body, headers=headers)
        attempts = [e for e in gw.events() if e.action.startswith("login.")]
    assert problem(response, 415, "unsupported_media_type")["detail"] == (
        "the body must be application/json"
    )
    assert attempts == []
