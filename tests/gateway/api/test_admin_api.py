"""The admin API: same credentials and engine as the proxy, scoped to the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bastion.config import parse_config
from bastion.core.model import AuditQuery
from bastion.gateway.app import build_app
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services

API = "/_bastion/api"
ACTOR = {"type": "operator", "id": "tester"}


@pytest.fixture
def services(tmp_path: Path) -> Services:
    config = parse_config(
        f"storage:\n  url: sqlite:///{tmp_path}/b.db\nsecurity:\n  pepper: {'p' * 40}\n",
        source="test",
    )
    built = build_services(config)
    built.storage.migrate()
    return built


@pytest.fixture
def admin_key(services: Services) -> str:
    done = initialise(
        storage=services.storage,
        api_keys=services.api_keys,
        clock=services.clock,
        tenant_name="default",
        admin_name="admin@example.com",
        actor=ACTOR,
    )
    return done.admin_key.secret


@pytest.fixture
def client(services: Services, admin_key: str) -> Iterator[TestClient]:
    with TestClient(build_app(services.config, services=services)) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def key_with(services: Services, *scopes: str) -> str:
    return services.api_keys.create(
        tenant_name="default",
        owner_name=None,
        name="k-" + "-".join(scopes),
        scopes=list(scopes),
        expires_at=None,
        actor=ACTOR,
    ).secret


def test_whoami(client: TestClient, admin_key: str) -> None:
    response = client.get(f"{API}/v1/whoami", headers=bearer(admin_key))
    assert response.status_code == 200
    assert response.json()["principal"] == "admin@example.com"
    assert response.json()["roles"] == ["admin"]


def test_no_credential_is_401_problem(client: TestClient, services: Services) -> None:
    response = client.get(f"{API}/v1/apikeys")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    with services.storage.transaction() as tx:
        events = tx.audit.query(AuditQuery(outcome="failure", limit=10))
    assert any(e.details.get("reason") == "missing_credential" for e in events)


def test_scope_narrows_admin_api(client: TestClient, services: Services) -> None:
    limited = key_with(services, "patterns:read")
    response = client.get(f"{API}/v1/apikeys", headers=bearer(limited))
    assert response.status_code == 403
    with services.storage.transaction() as tx:
        [event] = tx.audit.query(AuditQuery(action="apikey.read", limit=10))
    assert event.outcome == "denied"


def test_narrow_key_cannot_mint_a_wider_key(client: TestClient, services: Services) -> None:
    minter = key_with(services, "apikeys:create", "apikeys:read")
    wider = client.post(
        f"{API}/v1/apikeys", headers=bearer(minter), json={"name": "escalate", "scopes": ["admin"]}
    )
    assert wider.status_code == 403
    same = client.post(
        f"{API}/v1/apikeys",
        headers=bearer(minter),
        json={"name": "reader", "scopes": ["apikeys:read"]},
    )
    assert same.status_code == 201


def test_create_use_and_revoke_a_key(client: TestClient, admin_key: str) -> None:
    created = client.post(
        f"{API}/v1/apikeys",
        headers=bearer(admin_key),
        json={"name": "ci", "scopes": ["identity:read"]},
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert client.get(f"{API}/v1/whoami", headers=bearer(secret)).status_code == 200
    listed = client.get(f"{API}/v1/apikeys", headers=bearer(admin_key)).json()
    assert {k["name"] for k in listed} == {"bootstrap-admin", "ci"}
    assert all("secret" not in k for k in listed)
    revoked = client.delete(f"{API}/v1/apikeys/{created.json()['id']}", headers=bearer(admin_key))
    assert revoked.status_code == 200
    assert client.get(f"{API}/v1/whoami", headers=bearer(secret)).status_code == 401


def test_invalid_body_is_problem_400(client: TestClient, admin_key: str) -> None:
    response = client.post(f"{API}/v1/apikeys", headers=bearer(admin_key), json={"name": ""})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_openapi_document(client: TestClient) -> None:
    document = client.get(f"{API}/openapi.json").json()
    assert "/v1/apikeys" in document["paths"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
