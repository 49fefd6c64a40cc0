"""The one table from bastion errors to HTTP statuses, and RFC 9457 problem+json bodies.

Bodies say what kind of failure happened, never why in detail: the real reason (which key,
which rule) goes to the audit log only (DESIGN.md 7.5).
"""

from __future__ import annotations

import json

from bastion.errors import (
    AuditUnavailableError,
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RateLimitUnavailableError,
    RequestRejectedError,
    StorageError,
    UnsupportedMediaTypeError,
    UpstreamError,
    UpstreamTimeoutError,
)

# Most specific first: the first class the error is an instance of decides.
_STATUS: tuple[tuple[type[BastionError], int, str], ...] = (
    (AuthenticationError, 401, "Authentication required"),
    (AuthorizationError, 403, "Forbidden"),
    (PayloadTooLargeError, 413, "Content too large"),
    (UnsupportedMediaTypeError, 415, "Unsupported media type"),
    (RequestRejectedError, 400, "Bad request"),
    (RateLimitedError, 429, "Too many requests"),
    (RateLimitUnavailableError, 503, "Service unavailable"),
    (NotFoundError, 404, "Not found"),
    (ConflictError, 409, "Conflict"),
    (AuditUnavailableError, 503, "Audit trail unavailable"),
    (StorageError, 503, "Service unavailable"),
    (UpstreamTimeoutError, 504, "Upstream timed out"),
    (UpstreamError, 502, "Upstream unavailable"),
    (BastionError, 503, "Service unavailable"),
)

PROBLEM_CONTENT_TYPE = b"application/problem+json"


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


def response_headers(status: int) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE), (b"cache-control", b"no-store")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="bastion"'))
    return headers
