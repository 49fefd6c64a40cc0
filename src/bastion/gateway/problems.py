"""The one table from bastion errors to HTTP statuses, and RFC 9457 problem+json bodies.

Bodies say what kind of failure happened; a deny never says why in detail: the real reason
(which key, which rule) goes to the audit log only (DESIGN.md 7.5). Every body carries the
request's id, and so does its ``X-Bastion-Request-Id`` header.

Some failures belong to HTTP serving itself rather than to bastion's services, so they are
defined here: a method the endpoint does not answer (`MethodNotAllowedError`, 405 with
``Allow``), a request head over the server's limit (`HeadersTooLargeError`, 431) or too slow to
arrive (`RequestTimeoutError`, 408), a connection over ``gateway.connections`` from one client
(`TooManyConnectionsError`, 429) or in all (`ServerBusyError`, 503), and an unexpected
exception (`InternalError`, 500, which never shows the exception).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bastion.errors import (
    AuditUnavailableError,
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ConflictError,
    MisdirectedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RateLimitUnavailableError,
    RequestRejectedError,
    StorageError,
    UnsupportedMediaTypeError,
    UnsupportedTransferCodingError,
    UpstreamError,
    UpstreamTimeoutError,
)


class MethodNotAllowedError(RequestRejectedError):
    """The path exists but does not answer this method; ``allowed`` is what it answers."""

    code = "method_not_allowed"

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        self.allowed = tuple(allowed)
        super().__init__(f"{method} is not allowed here; use {' or '.join(self.allowed)}")


class HeadersTooLargeError(RequestRejectedError):
    """The request line and headers together are over the server's limit (RFC 6585: 431)."""

    code = "headers_too_large"


class RequestTimeoutError(RequestRejectedError):
    """The client did not send its request head in time (RFC 9110: 408)."""

    code = "request_timeout"


class TooManyConnectionsError(BastionError):
    """The client already holds ``gateway.connections.perClient`` connections open."""

    code = "too_many_connections"


class ServerBusyError(BastionError):
    """The process already holds ``gateway.connections.max`` connections open."""

    code = "server_busy"


class InternalError(BastionError):
    """A failure bastion did not expect; the body never says more than that."""

    code = "internal_error"


# Most specific first: the first class the error is an instance of decides.
_STATUS: tuple[tuple[type[BastionError], int, str], ...] = (
    (AuthenticationError, 401, "Authentication required"),
    (AuthorizationError, 403, "Forbidden"),
    (PayloadTooLargeError, 413, "Content too large"),
    (UnsupportedMediaTypeError, 415, "Unsupported media type"),
    (MethodNotAllowedError, 405, "Method not allowed"),
    (HeadersTooLargeError, 431, "Request header fields too large"),
    (RequestTimeoutError, 408, "Request timeout"),
    (UnsupportedTransferCodingError, 501, "Not implemented"),
    (MisdirectedRequestError, 421, "Misdirected request"),
    (RequestRejectedError, 400, "Bad request"),
    (RateLimitedError, 429, "Too many requests"),
    (TooManyConnectionsError, 429, "Too many connections"),
    (ServerBusyError, 503, "Service unavailable"),
    (RateLimitUnavailableError, 503, "Service unavailable"),
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (AuditUnavailableError, 503, "Audit trail unavailable"),
    (StorageError, 503, "Service unavailable"),
    (UpstreamTimeoutError, 504, "Upstream timed out"),
    (UpstreamError, 502, "Upstream unavailable"),
    (InternalError, 500, "Internal server error"),
    (BastionError, 503, "Service unavailable"),
)

PROBLEM_CONTENT_TYPE = b"application/problem+json"

# Where the edge leaves a request's id in the ASGI scope's state for bastion's own apps.
REQUEST_ID_STATE = "bastion.request_id"


def status_for(error: BastionError) -> tuple[int, str]:
    for cls, status, title in _STATUS:
        if isinstance(error, cls):
            return status, title
    return 503, "Service unavailable"


def problem_body(
    error: BastionError,
    *,
    request_id: str,
    detail: str | None = None,
    status: int | None = None,
) -> bytes:
    """The RFC 9457 body; ``status`` overrides the table (forward-auth answers 403 for 400)."""
    natural, title = status_for(error)
    status = status or natural
    body = {
        "type": f"https://bastion.dev/problems/{error.code}",
        "title": title,
        "status": status,
        "code": error.code,
        "requestId": request_id,
    }
    if detail is not None:
        body["detail"] = detail
    return json.dumps(body).encode()


def response_headers(
    status: int, *, request_id: str | None = None, error: BastionError | None = None
) -> list[tuple[bytes, bytes]]:
    """The headers of a problem answer: 401 names its scheme, 405 lists what is allowed, a
    rate limit or a connection cap says when to come back (``Retry-After``, ``RateLimit-*``)."""
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE), (b"cache-control", b"no-store")]
    if request_id is not None:
        headers.append((b"x-bastion-request-id", request_id.encode()))
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="bastion"'))
    if isinstance(error, MethodNotAllowedError):
        headers.append((b"allow", ", ".join(error.allowed).encode()))
    if isinstance(error, RateLimitedError):
        headers += [
            (b"ratelimit-limit", str(error.limit).encode()),
            (b"ratelimit-remaining", b"0"),
            (b"ratelimit-reset", str(error.retry_after).encode()),
            (b"ratelimit-policy", f"{error.limit};w={error.window}".encode()),
            (b"retry-after", str(error.retry_after).encode()),
        ]
    if isinstance(error, TooManyConnectionsError | ServerBusyError):
        headers.append((b"retry-after", b"1"))  # a place may free up at any moment
    return headers
