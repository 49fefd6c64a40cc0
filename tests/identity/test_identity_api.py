"""The identity endpoints over HTTP: admin API CRUD, agent registration, OAuth token and
revocation, login, and the /.well-known documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bastion.gateway.app import build_app
from tests.identity.conftest import PASSWORD, World, make_world

API = "/_bastion/api/v1"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[World, TestClient, dict[str, str]]]:
    world = make_world(f"sqlite:///{tmp_path}/b.db")
    with TestClient(build_app(world.services.config, services=world.services)) as client:
        yield world, client, {"Authorization": f"Bearer {world.boot.admin_key.secret}"}
    world.services.storage.close()


def test_user_crud_over_the_api(api: tuple[World, TestClient, dict[str, str]]) -> None:
    _, client, admin = api
    created = client.post(
        f"{API}/users", headers=admin, json={"name": "Quinn@Example.com", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "quinn@example.com"
    weak_body = {"name": "weak@example.com", "password": "qwerty123456"}
    weak = client.post(f"{API}/users", headers=admin, json=weak_body)
    assert weak.status_code == 400 and "commonly used" in weak.json()["detail"]
    assert "qwerty123456" not in weak.text
    assert (
        client.post(f"{API}/users", headers=admin, json={"name": "QUINN@example.com"}).status_code
        == 409
    )
    assert client.get(f"{API}/users/quinn@example.com", headers=admin).json()["groups"] == []
    patched = client.patch(f"{API}/users/quinn@example.com", headers=admin, json={"disabled": True})
    assert patched.json()["disabled"] is True
    assert client.delete(f"{API}/users/quinn@example.com", headers=admin).status_code == 200
    assert client.get(f"{API}/users/quinn@example.com", headers=admin).status_code == 404


def test_groups_and_members_over_the_api(api: tuple[World, TestClient, dict[str, str]]) -> None:
    _, client, admin = api
    assert client.post(f"{API}/groups", headers=admin, json={"name": "Ops"}).status_code == 201
    member = client.put(f"{API}/groups/ops/members/admin@example.com", headers=admin)
    assert member.json()["members"] == [{"name": "admin@example.com", "kind": "user"}]
    assert client.get(f"{API}/users/admin@example.com", headers=admin).json()["groups"] == ["ops"]
    listed = {u["name"]: u["groups"] for u in client.get(f"{API}/users", headers=admin).json()}
    assert listed["admin@example.com"] == ["ops"]
    assert client.post(f"{API}/groups", headers=admin, json={"name": "Auditors"}).status_code == 201
    client.put(f"{API}/groups/auditors/members/admin@example.com", headers=admin)
    renamed = client.patch(
        f"{API}/users/admin@example.com", headers=admin, json={"displayName": "Admin"}
    )
    assert renamed.json()["groups"] == ["auditors", "ops"]
    assert (
        client.delete(f"{API}/groups/ops/members/admin@example.com", headers=admin).json()[
            "members"
        ]
        == []
    )


def test_agent_registration_over_the_api(api: tuple[World, TestClient, dict[str, str]]) -> None:
    _, client, admin = api
    token = client.post(
        f"{API}/agents/tokens",
        headers=admin,
        json={"capabilities": ["classification"], "roles": ["operator"]},
    )
    assert token.status_code == 201
    secret = token.json()["token"]
    registered = client.post(
        f"{API}/agents/register",
        headers={"Authorization": f"Bearer {secret}"},
        json={"name": "worker-1"},
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert body["scopes"] == ["classification:*"] and body["roles"] == ["operator"]
    again = client.post(f"{API}/agents/register", headers={"Authorization": f"Bearer {secret}"})
    assert again.status_code == 401
    tokens = client.get(f"{API}/agents/tokens", headers=admin).json()
    assert tokens[0]["agentId"] == body["id"] and "token" not in tokens[0]
    assert [a["name"] for a in client.get(f"{API}/agents", headers=admin).json()] == ["worker-1"]
    # An agent gets access tokens with its own key as client secret.
    issued = client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["clientId"], body["apiKey"]),
    )
    assert issued.status_code == 200 and issued.json()["scope"] == "classification:*"
    direct = client.post(f"{API}/agents", headers=admin, json={"name": "sneaky"})
    assert direct.status_code == 400


def test_oauth_errors_follow_rfc6749(api: tuple[World, TestClient, dict[str, str]]) -> None:
    _, client, _ = api
    assert client.post("/_bastion/oauth/token", data={"grant_type": "password"}).json() == {
        "error": "unsupported_grant_type"
    }
    bad_client = client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("x", "bk_live_nope"),
    )
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    assert (
        client.post(
            "/_bastion/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "brt_x"}
        ).json()["error"]
        == "invalid_grant"
    )
    repeated = client.post(
        "/_bastion/oauth/token",
        content="grant_type=refresh_token&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.json()["error"] == "invalid_request"
    assert (
        client.post("/_bastion/oauth/token", json={"grant_type": "refresh_token"}).json()["error"]
        == "invalid_request"
    )


def test_login_refresh_revoke_and_whoami_with_a_token(
    api: tuple[World, TestClient, dict[str, str]],
) -> None:
    _world, client, admin = api
    client.post(
        f"{API}/users", headers=admin, json={"name": "rae@example.com", "password": PASSWORD}
    )
    client.post(f"{API}/tenants", headers=admin, json={"name": "other"})
    logged = client.post(
        "/_bastion/login", json={"username": "rae@example.com", "password": PASSWORD}
    )
    assert logged.status_code == 200 and logged.headers["cache-control"] == "no-store"
    tokens = logged.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    refreshed = client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    ).json()
    assert (
        client.post(
            "/_bastion/oauth/revoke", data={"token": refreshed["refresh_token"]}
        ).status_code
        == 200
    )
    again = client.post(
        "/_bastion/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
    )
    assert again.json()["error"] == "invalid_grant"
    assert (
        client.get(
            f"{API}/whoami", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
        ).status_code
        == 401
    )


def test_well_known_documents(api: tuple[World, TestClient, dict[str, str]]) -> None:
    world, client, _ = api
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["issuer"] == world.identity.issuer
    assert discovery["token_endpoint"].endswith("/_bastion/oauth/token")
    jwks = client.get("/.well-known/jwks.json").json()["keys"]
    assert {k["alg"] for k in jwks} == {"RS256", "EdDSA"}  # tokens, and the identity assertion
    assert all("d" not in k for k in jwks)


def test_tenants_are_platform_only_to_create(api: tuple[World, TestClient, dict[str, str]]) -> None:
    _world, client, admin = api
    assert client.post(f"{API}/tenants", headers=admin, json={"name": "Globex"}).status_code == 201
    names = [t["name"] for t in client.get(f"{API}/tenants", headers=admin).json()]
    assert sorted(names) == ["default", "globex"]
    assert (
        client.patch(f"{API}/tenants/globex", headers=admin, json={"disabled": True}).json()[
            "disabled"
        ]
        is True
    )
    assert client.delete(f"{API}/tenants/globex", headers=admin).status_code == 204


def test_a_caller_cannot_disable_its_own_tenant_over_the_api(
    api: tuple[World, TestClient, dict[str, str]],
) -> None:
    """Disabling the platform tenant from the API would lock every operator out at once."""
    _world, client, admin = api
    answer = client.patch(f"{API}/tenants/default", headers=admin, json={"disabled": True})
    assert answer.status_code == 409
    assert "cannot disable itself" in answer.json()["detail"]
    assert client.get(f"{API}/tenants/default", headers=admin).json()["disabled"] is False
    renamed = client.patch(f"{API}/tenants/default", headers=admin, json={"displayName": "Ops"})
    assert renamed.status_code == 200


def test_openapi_documents_the_identity_endpoints(
    api: tuple[World, TestClient, dict[str, str]],
) -> None:
    _, client, _ = api
    paths = client.get("/_bastion/api/openapi.json").json()["paths"]
    for path in (
        "/v1/users",
        "/v1/groups/{name}/members/{member}",
        "/v1/agents/register",
        "/v1/tenants",
        "/v1/serviceaccounts/{name}/credentials",
        "/v1/apikeys/{key_id}/rotate",
    ):
        assert path in paths, path
