"""The status table: every bastion error maps to a deny status, never to a 2xx."""

from __future__ import annotations

import json

import pytest

from bastion.errors import (
    AuditUnavailableError,
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ClientAddressDeniedError,
    ConflictError,
    InvalidBodyError,
    PayloadTooLargeError,
    RateLimitedError,
    RateLimitUnavailableError,
    RequestRejectedError,
    StorageError,
    UnsupportedMediaTypeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from bastion.gateway.problems import problem_body, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthenticationError("unknown_key"), 401),
        (AuthorizationError(("no role",)), 403),
        (RequestRejectedError("bad path"), 400),
        (AuditUnavailableError("down"), 503),
        (StorageError("down"), 503),
        (ConflictError("dup"), 409),
        (UpstreamTimeoutError("slow"), 504),
        (UpstreamError("down"), 502),
        (BastionError("?"), 503),
    ],
)
def test_status_table(error: BastionError, status: int) -> None:
    assert status_for(error)[0] == status


def test_authentication_problem_never_names_the_reason() -> None:
    unknown = problem_body(AuthenticationError("unknown_key"), request_id="r")
    revoked = problem_body(AuthenticationError("revoked_key"), request_id="r")
    assert unknown == revoked
    assert json.loads(unknown)["status"] == 401


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ClientAddressDeniedError(("not in allowlist",)), 403),
        (PayloadTooLargeError("big"), 413),
        (UnsupportedMediaTypeError("xml"), 415),
        (InvalidBodyError("json_too_deep", "deep"), 400),
        (RateLimitedError("perClient", limit=5, retry_after=3, reset_after=3, window=5), 429),
        (RateLimitUnavailableError("redis down"), 503),
    ],
)
def test_gateway_errors_map_to_deny_statuses(error: BastionError, status: int) -> None:
    assert status_for(error)[0] == status
