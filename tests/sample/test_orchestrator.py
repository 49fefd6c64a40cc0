"""The sample upstream answers a bad body with 400, not a 500 and a traceback."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from bastion.sample.orchestrator import create_app


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/api/patterns", b"", "application/json"),
        ("POST", "/api/patterns", b"hi", "text/plain"),
        ("PUT", "/api/patterns/x", b"[1]", "application/json"),
        ("PUT", "/api/patterns/x", b'{"agents": "many"}', "application/json"),
        ("PUT", "/api/patterns/x", b"\xff\xfe{}", "application/json"),
    ],
)
def test_bad_pattern_body_is_a_400(method: str, path: str, body: bytes, content_type: str) -> None:
    client = TestClient(create_app(), raise_server_exceptions=True)
    response = client.request(method, path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["data"]["error"]


def test_pattern_is_stored_from_a_good_body() -> None:
    client = TestClient(create_app())
    response = client.put("/api/patterns/x", json={"agents": 4, "version": "2.0.0"})
    assert response.status_code == 200
    assert response.json()["data"] == {"name": "x", "version": "2.0.0", "agents": 4}
    created = client.post("/api/patterns", json={"name": "y"})
    assert created.status_code == 201
    assert created.json()["data"] == {"name": "y", "version": "1.0.0", "agents": 1}
