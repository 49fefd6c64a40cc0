"""Reading the original request of a forward-auth call: trusted peers only, one unambiguous
request, canonical path; and the statuses a deny may be sent with."""

from __future__ import annotations

import pytest

from bastion.errors import AuthorizationError, RequestRejectedError
from bastion.gateway.forward_auth import deny_status, original_request


def read(
    headers: list[tuple[bytes, bytes]],
    *,
    suffix: str | None = None,
    trusted: bool = True,
    method: str = "GET",
    query: bytes = b"",
):  # type: ignore[no-untyped-def]
    return original_request(
        method=method, suffix=suffix, query=query, headers=headers, trusted=trusted
    )


def test_nginx_form() -> None:
    request = read([(b"x-original-uri", b"/api/p%61tterns?q=1"), (b"x-original-method", b"post")])
    assert (request.method, request.path) == ("POST", "/api/patterns")


def test_traefik_form_and_agreeing_forms() -> None:
    traefik = [(b"x-forwarded-uri", b"/api/x"), (b"x-forwarded-method", b"GET")]
    assert read(traefik).path == "/api/x"
    both = [*traefik, (b"x-original-uri", b"/api/x"), (b"x-original-method", b"GET")]
    assert read(both).path == "/api/x"


def test_envoy_form() -> None:
    request = read([], suffix="/api/x", method="DELETE", query=b"a=1")
    assert (request.method, request.path) == ("DELETE", "/api/x")


@pytest.mark.parametrize(
    "headers",
    [
        [
            (b"x-original-uri", b"/public"),
            (b"x-forwarded-uri", b"/admin"),
            (b"x-original-method", b"GET"),
        ],
        [(b"x-original-uri", b"/a"), (b"x-original-uri", b"/b"), (b"x-original-method", b"GET")],
        [
            (b"x-original-uri", b"/a"),
            (b"x-original-method", b"GET"),
            (b"x-forwarded-method", b"PUT"),
        ],
        [(b"x-original-uri", b"/a")],
        [],
    ],
)
def test_missing_or_conflicting_original_request_is_denied(
    headers: list[tuple[bytes, bytes]],
) -> None:
    with pytest.raises(AuthorizationError):
        read(headers)


def test_untrusted_peer_is_denied() -> None:
    with pytest.raises(AuthorizationError):
        read([(b"x-original-uri", b"/a"), (b"x-original-method", b"GET")], trusted=False)


@pytest.mark.parametrize("uri", [b"/a/../b", b"//a", b"/a%2fb", b"http://h/a", b"/a#/b", b"/a;b"])
def test_non_canonical_original_path_is_rejected(uri: bytes) -> None:
    with pytest.raises(RequestRejectedError):
        read([(b"x-original-uri", uri), (b"x-original-method", b"GET")])


@pytest.mark.parametrize(
    ("status", "asked", "sent"),
    [
        (400, None, 403),
        (413, None, 403),
        (415, None, 403),
        (404, None, 403),
        (401, None, 401),
        (429, None, 429),
        (429, b"403", 403),
        (429, b"401", 401),
        (429, b"200", 429),
        (503, None, 503),
    ],
)
def test_deny_status(status: int, asked: bytes | None, sent: int) -> None:
    headers = [(b"x-bastion-rate-limit-status", asked)] if asked else []
    assert deny_status(status, headers) == sent
