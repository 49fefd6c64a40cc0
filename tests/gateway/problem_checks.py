"""What every problem answer from bastion must carry, checked in one place."""

from __future__ import annotations

from typing import Any

from httpx2 import Response

PROBLEM = "application/problem+json"


def problem(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The problem body, once its status, media type and request id (body and header, the
    same) are checked, and no traceback is in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["requestId"].startswith("req_")
    assert response.headers["x-bastion-request-id"] == body["requestId"]
    if code is not None:
        assert body["code"] == code
    assert "Traceback" not in response.text
    return body
