"""The admin API's error contract: every failure is problem+json with the request's id (body
and ``X-Bastion-Request-Id``), a status from bastion's one table, and a detail a person can act
on; never the framework's ``{"detail": …}``, an internal class name or a 500 for bad input."""

from __future__ import annotations

from typing import Any

import bcrypt
import pytest
from httpx2 import Response

from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.problem_checks import problem

API = "/_bastion/api"


def post_json(gw: Gateway, path: str, content: bytes) -> Response:
    headers = {**gw.auth(), "Content-Type": "application/json"}
    return gw.client.post(f"{API}{path}", content=content, headers=headers)


@pytest.mark.parametrize("path", ["/v1/nosuch", "/v2/users", "/", "/v1/users/x/nosuch"])
@pytest.mark.parametrize("authenticated", [True, False])
def test_unknown_admin_route_is_problem_json(
    gateway: GatewayFactory, path: str, authenticated: bool
) -> None:
    with gateway() as gw:
        response = gw.client.get(API + path, headers=gw.auth() if authenticated else {})
    body = problem(response, 404, "not_found")
    assert "openapi.json" in body["detail"]


def test_unknown_path_under_the_prefix_is_problem_json(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        for path in ("/_bastion/nosuch", "/_bastion/api"):
            problem(gw.client.get(path, headers=gw.auth()), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/v1/users", {"GET", "POST"}), ("PATCH", "/v1/whoami", {"GET"})],
)
def test_method_not_allowed_is_problem_json_with_allow(
    gateway: GatewayFactory, method: str, path: str, allowed: set[str]
) -> None:
    with gateway() as gw:
        response = gw.client.request(method, API + path, headers=gw.auth())
    body = problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} >= allowed
    assert method in body["detail"]


@pytest.mark.parametrize("path", ["/_bastion/health", "/_bastion/ready", "/_bastion/metrics"])
def test_own_read_only_endpoints_answer_only_get_and_head(
    gateway: GatewayFactory, path: str
) -> None:
    with gateway() as gw:
        assert gw.client.get(path).status_code == 200
        assert gw.client.head(path).status_code == 200
        response = gw.client.post(path, content=b"{}")
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD"


def test_deeply_nested_json_is_400_with_a_precise_detail(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = post_json(gw, "/v1/users", b"[" * 5000 + b"]" * 5000)
    body = problem(response, 400, "invalid_body")
    assert "nests too deeply" in body["detail"]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"name": ', "the body is not valid JSON (line 1, column 10): expecting value"),
        (b'{\n  "name": "x",\n}', "the body is not valid JSON (line 3, column 1)"),
        (b"\xff\xfe{}", "the body is not valid JSON (line 1, column 1)"),
    ],
)
def test_malformed_json_names_line_and_column(
    gateway: GatewayFactory, content: bytes, detail: str
) -> None:
    with gateway() as gw:
        body = problem(post_json(gw, "/v1/users", content), 400, "invalid_body")
    assert body["detail"].startswith(detail)


def test_field_errors_name_the_field_and_the_rule(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        long_name = post_json(gw, "/v1/users", b'{"name": "' + b"a" * 300 + b'"}')
        not_object = post_json(gw, "/v1/users", b"[1]")
        no_body = gw.client.post(f"{API}/v1/users", headers=gw.auth())
        bad_query = gw.client.get(f"{API}/v1/audit/events?limit=many", headers=gw.auth())
    assert problem(long_name, 400)["detail"] == "name: must be at most 254 characters"
    assert problem(not_object, 400)["detail"] == "the body must be a JSON object"
    assert problem(no_body, 400)["detail"] == "the body is required"
    assert problem(bad_query, 400)["detail"] == "query parameter limit: must be an integer"


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"name": "x@example.com"}'),
        ("application/x-www-form-urlencoded", b"name=x%40example.com"),
    ],
)
def test_body_that_is_not_json_is_415(
    gateway: GatewayFactory, content_type: str, content: bytes
) -> None:
    with gateway() as gw:
        headers = {**gw.auth(), "Content-Type": content_type}
        response = gw.client.post(f"{API}/v1/users", content=content, headers=headers)
    body = problem(response, 415, "unsupported_media_type")
    assert body["detail"] == f"the body must be application/json, not {content_type}"


@pytest.mark.parametrize(
    ("check", "detail"),
    [
        ({"requests": []}, "requests: must hold at least 1 item"),
        ({"principal": "x", "action": "read"}, "resource: is required"),
        (
            {"requests": [{"principal": "", "action": "read", "resource": "patterns"}]},
            "requests/0/principal: must not be empty",
        ),
    ],
)
def test_authz_check_errors_never_name_internal_models(
    gateway: GatewayFactory, check: dict[str, Any], detail: str
) -> None:
    with gateway() as gw:
        response = gw.client.post(f"{API}/v1/authz/check", json=check, headers=gw.auth())
    body = problem(response, 400, "bad_request")
    assert body["detail"] == detail
    assert "CheckIn" not in response.text and "BatchIn" not in response.text


def test_validation_detail_never_echoes_the_value_sent(gateway: GatewayFactory) -> None:
    secret = "bk_live_" + "S" * 40
    with gateway() as gw:
        response = gw.client.post(
            f"{API}/v1/apikeys",
            json={"name": secret * 10, "scopes": ["admin"], "expires": secret},
            headers=gw.auth(),
        )
    problem(response, 400, "bad_request")
    assert secret not in response.text


def test_role_inheriting_an_unknown_role_is_400_naming_it(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.post(
            f"{API}/v1/roles", json={"name": "a", "inherits": ["b"]}, headers=gw.auth()
        )
    assert problem(response, 400, "bad_request")["detail"] == "inherits/0: unknown role b"


@pytest.mark.parametrize(
    ("path", "document", "detail"),
    [
        ("/v1/users", {"name": "Bob@Example.com"}, "a user named bob@example.com already exists"),
        ("/v1/serviceaccounts", {"name": "ci"}, "a service account named ci already exists"),
        ("/v1/groups", {"name": "ops"}, "a group named ops already exists"),
        ("/v1/tenants", {"name": "acme"}, "a tenant named acme already exists"),
        ("/v1/roles", {"name": "auditor"}, "a role named auditor already exists"),
        ("/v1/apikeys", {"name": "ci", "scopes": ["admin"]}, "an API key named ci already exists"),
    ],
)
def test_conflict_says_what_already_exists(
    gateway: GatewayFactory, path: str, document: dict[str, Any], detail: str
) -> None:
    with gateway() as gw:
        first = gw.client.post(API + path, json=document, headers=gw.auth())
        assert first.status_code == 201, first.text
        again = gw.client.post(API + path, json=document, headers=gw.auth())
    assert problem(again, 409, "conflict")["detail"] == detail


def test_conflicts_on_credentials_and_bindings_say_what_is_taken(gateway: GatewayFactory) -> None:
    credential = {"name": "ci-secret", "scopes": ["admin"]}
    binding = {"subject": {"type": "serviceAccount", "name": "ci"}, "role": "viewer"}
    with gateway() as gw:

        def post(path: str, document: dict[str, Any]) -> Response:
            return gw.client.post(API + path, json=document, headers=gw.auth())

        assert post("/v1/serviceaccounts", {"name": "ci"}).status_code == 201
        assert post("/v1/serviceaccounts/ci/credentials", credential).status_code == 201
        assert post("/v1/bindings", binding).status_code == 201
        key_again = post("/v1/serviceaccounts/ci/credentials", credential)
        bound_again = post("/v1/bindings", binding)
    assert (
        problem(key_again, 409, "conflict")["detail"] == "an API key named ci-secret already exists"
    )
    assert problem(bound_again, 409, "conflict")["detail"] == (
        "service account ci is already bound to role viewer"
    )


@pytest.mark.parametrize(
    ("method", "path", "detail"),
    [
        ("GET", "/v1/users/Ghost", "no user 'ghost' in tenant 'default'"),
        ("PATCH", "/v1/serviceaccounts/ghost", "no service account 'ghost' in tenant 'default'"),
        ("DELETE", "/v1/agents/ghost", "no agent 'ghost' in tenant 'default'"),
        ("GET", "/v1/groups/nope", "no group 'nope' in tenant 'default'"),
        ("PUT", "/v1/groups/nope/members/ghost", "no group 'nope' in tenant 'default'"),
        ("GET", "/v1/roles/ghost", "no role 'ghost' in tenant 'default'"),
        ("PUT", "/v1/roles/ghost", "no role 'ghost' in tenant 'default'"),
        ("PUT", "/v1/roles/admin", "no custom role 'admin' in tenant 'default'"),
        ("DELETE", "/v1/roles/ghost", "no custom role 'ghost' in tenant 'default'"),
        ("GET", "/v1/bindings/bnd_missing", "no binding 'bnd_missing' in tenant 'default'"),
        ("DELETE", "/v1/bindings/bnd_missing", "no binding 'bnd_missing' in tenant 'default'"),
        ("GET", "/v1/resource-rules/rul_missing", "no rule 'rul_missing' in tenant 'default'"),
        ("DELETE", "/v1/resource-rules/rul_missing", "no rule 'rul_missing' in tenant 'default'"),
        ("GET", "/v1/tenants/Nowhere", "no tenant 'nowhere'"),
    ],
)
def test_not_found_names_what_is_missing_and_the_tenant(
    gateway: GatewayFactory, method: str, path: str, detail: str
) -> None:
    body = {"PATCH": {"displayName": "x"}, "PUT": {"permissions": []}}.get(method)
    with gateway() as gw:
        response = gw.client.request(method, API + path, json=body, headers=gw.auth())
    assert problem(response, 404, "not_found")["detail"] == detail


def test_admin_api_problem_request_id_is_the_audited_one(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.get(f"{API}/v1/apikeys")
        body = problem(response, 401, "unauthenticated")
        [event] = [e for e in gw.events() if e.request.get("requestId") == body["requestId"]]
    assert event.outcome == "failure"
    assert event.details["reason"] == "missing_credential"


def test_policy_schema_and_validate_work_without_policy_files(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        schema = gw.client.get(f"{API}/v1/policies/schema", headers=gw.auth())
        valid = gw.client.post(
            f"{API}/v1/policies/validate",
            json={"text": 'permit(principal, action == Action::"read", resource);'},
            headers=gw.auth(),
        )
        invalid = gw.client.post(
            f"{API}/v1/policies/validate",
            json={"text": "permit(principal, action, resource) when { principal.nope };"},
            headers=gw.auth(),
        )
    assert schema.status_code == 200
    assert "User" in schema.json()[""]["entityTypes"]
    assert valid.status_code == 200 and valid.json() == {"valid": True, "errors": []}
    assert invalid.status_code == 200 and invalid.json()["valid"] is False


def test_policy_reload_without_policy_files_says_so(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.post(f"{API}/v1/policies/reload", headers=gw.auth())
    assert "security.policies.files" in problem(response, 409, "conflict")["detail"]


def test_proxied_deny_carries_the_request_id_header(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        response = gw.client.get("/api/patterns")
    problem(response, 401, "unauthenticated")


CHECK = {"principal": "admin@example.com", "action": "read", "resource": "patterns"}


@pytest.mark.parametrize(
    ("check", "detail"),
    [
        (
            {**CHECK, "scopes": ["bad scope"]},
            "scopes/0: must be a scope like patterns:read, patterns:* or admin",
        ),
        (
            {"requests": [CHECK, {**CHECK, "scopes": ["patterns:read", "a:b:c"]}]},
            "requests/1/scopes/1: must be a scope like patterns:read, patterns:* or admin",
        ),
        (
            {**CHECK, "scopes": []},
            "scopes: at least one scope is required (use 'admin' for full access)",
        ),
        (
            {**CHECK, "scopes": [" "]},
            "scopes: at least one scope is required (use 'admin' for full access)",
        ),
    ],
)
def test_authz_check_reads_scopes_as_a_credentials_and_names_a_bad_one(
    gateway: GatewayFactory, check: dict[str, Any], detail: str
) -> None:
    with gateway() as gw:
        response = gw.client.post(f"{API}/v1/authz/check", json=check, headers=gw.auth())
    assert problem(response, 400, "bad_request")["detail"] == detail
    assert "bad scope" not in response.text and "a:b:c" not in response.text


def test_authz_check_narrows_by_scopes_as_written_by_a_credential(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        narrowed = {**CHECK, "action": "delete", "scopes": [" patterns:read ", "patterns:read"]}
        response = gw.client.post(f"{API}/v1/authz/check", json=narrowed, headers=gw.auth())
    assert response.status_code == 200, response.text
    assert response.json()["effect"] == "deny"
    assert "credential scopes do not include patterns:delete" in response.json()["reasons"]


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("a/b", "a role name must not contain control characters or slashes"),
        ("a\\b", "a role name must not contain control characters or slashes"),
        ("x\x00y", "name: must not hold a NUL character"),
        ("tab\there", "a role name must not contain control characters or slashes"),
        ("zero\u200bwidth", "a role name must not contain control characters or slashes"),
        ("a\uff0fb", "a role name must not contain control characters or slashes"),  # full-width /
        ("   ", "a role name must be 1 to 254 characters"),
    ],
)
def test_role_names_are_held_to_the_rules_of_every_other_name(
    gateway: GatewayFactory, name: str, detail: str
) -> None:
    with gateway() as gw:
        response = gw.client.post(
            f"{API}/v1/roles",
            json={"name": name, "permissions": ["patterns:read"]},
            headers=gw.auth(),
        )
        roles = gw.client.get(f"{API}/v1/roles", headers=gw.auth()).json()
        created = [e for e in gw.events() if e.action == "role.create"]
    assert problem(response, 400, "bad_request")["detail"] == detail
    assert {r["source"] for r in roles} == {"builtin"} and created == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"name": "ci\r\nx", "scopes": ["patterns:read"]},
            "a key name must not contain control characters or slashes",
        ),
        ({"name": "k" * 255, "scopes": ["patterns:read"]}, "name: must be at most 254 characters"),
        (
            {"name": "ci", "scopes": ["patterns:\u001b[2Jread"]},
            "'patterns:\\x1b[2Jread' must not contain white space or control characters",
        ),
        (
            {"name": "ci", "scopes": ["patterns: read"]},
            "'patterns: read' must not contain white space or control characters",
        ),
    ],
    ids=["crlf-name", "long-name", "ansi-scope", "spaced-scope"],
)
def test_injected_control_characters_in_a_new_keys_name_or_scopes_are_refused(
    gateway: GatewayFactory, body: dict[str, Any], detail: str
) -> None:
    with gateway() as gw:
        response = gw.client.post(f"{API}/v1/apikeys", json=body, headers=gw.auth())
        created = [e for e in gw.events() if e.action == "apikey.create"]
    assert problem(response, 400, "bad_request")["detail"] == detail
    assert len(created) == 1  # the bootstrap key only


@pytest.mark.parametrize("name", ["reader,admin", "reader admin", "reader,"])
def test_a_role_named_like_two_roles_is_refused(gateway: GatewayFactory, name: str) -> None:
    """A delegated administrator made ``reader,admin`` (holding ``patterns:read``), bound
    itself, and the upstream read ``X-Bastion-Roles: reader,admin`` as holding ``admin``."""
    with gateway() as gw:
        response = gw.client.post(
            f"{API}/v1/roles",
            json={"name": name, "permissions": ["patterns:read"]},
            headers=gw.auth(),
        )
        created = [e for e in gw.events() if e.action == "role.create"]
    assert problem(response, 400, "bad_request")["detail"] == (
        "a role name must not contain a comma or white space: the upstream gets a principal's "
        "roles as one comma-separated list (X-Bastion-Roles), which would read such a name as "
        "two roles"
    )
    assert created == []


def test_a_role_name_is_trimmed_and_the_answer_is_the_role_saved(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        created = gw.client.post(
            f"{API}/v1/roles",
            json={"name": " spaced ", "permissions": ["patterns:read"]},
            headers=gw.auth(),
        )
        read = gw.client.get(f"{API}/v1/roles/spaced", headers=gw.auth())
        updated = gw.client.put(
            f"{API}/v1/roles/spaced", json={"permissions": ["patterns:create"]}, headers=gw.auth()
        )
        [event] = [e for e in gw.events() if e.action == "role.create"]
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "spaced" == read.json()["name"]
    assert event.resource == {"type": "role", "id": "spaced"}
    assert updated.status_code == 200 and updated.json()["permissions"] == ["patterns:create"]


def test_role_names_keep_their_case_but_no_look_alike_of_another_is_made(
    gateway: GatewayFactory,
) -> None:
    def create(gw: Gateway, name: str) -> Response:
        body = {"name": name, "permissions": ["patterns:read"]}
        return gw.client.post(f"{API}/v1/roles", json=body, headers=gw.auth())

    with gateway() as gw:
        kept = create(gw, "Auditor")
        builtin = create(gw, "Admin")
        wide = create(gw, "\uff21\uff35\uff24\uff29\uff34\uff2f\uff32")  # full-width AUDITOR
        lower = create(gw, "auditor")
    assert kept.status_code == 201 and kept.json()["name"] == "Auditor"
    assert problem(builtin, 409, "conflict")["detail"] == "a role named admin already exists"
    assert problem(wide, 409, "conflict")["detail"] == "a role named Auditor already exists"
    assert problem(lower, 409, "conflict")["detail"] == "a role named Auditor already exists"


@pytest.mark.parametrize(
    ("hashed", "detail"),
    [
        ("$2b$04$abc", "passwordHash: a bcrypt hash must be $2a$, $2b$ or $2y$"),
        ("$argon2id$v=19$m=1,t=1,p=1$xx$yy", "passwordHash: an Argon2id hash must be"),
        ("garbage", "passwordHash: must be a bcrypt ($2b$…) or Argon2id ($argon2id$…) hash"),
    ],
)
def test_an_imported_password_hash_that_could_never_verify_is_400_and_no_user(
    gateway: GatewayFactory, hashed: str, detail: str
) -> None:
    with gateway() as gw:
        response = gw.client.post(
            f"{API}/v1/users",
            json={"name": "legacy@example.com", "passwordHash": hashed},
            headers=gw.auth(),
        )
        missing = gw.client.get(f"{API}/v1/users/legacy@example.com", headers=gw.auth())
        created = [e for e in gw.events() if e.resource.get("id") == "legacy@example.com"]
    assert problem(response, 400, "bad_request")["detail"].startswith(detail)
    assert hashed not in response.text
    assert missing.status_code == 404 and created == []


def test_an_imported_bcrypt_hash_logs_in(gateway: GatewayFactory) -> None:
    password = "spec 001 legacy password"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    with gateway() as gw:
        response = gw.client.post(
            f"{API}/v1/users",
            json={"name": "legacy@example.com", "passwordHash": hashed},
            headers=gw.auth(),
        )
        login = gw.client.post(
            "/_bastion/login", json={"username": "legacy@example.com", "password": password}
        )
    assert response.status_code == 201, response.text
    assert login.status_code == 200, login.text


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (
            b'{"name": "ci", "scopes": ["admin"], "scopes": ["patterns:read"]}',
            'the body has the key "scopes" more than once in one object',
        ),
        (
            b'{"name": "ci", "scopes": ["patterns:read"], "name": "other"}',
            'the body has the key "name" more than once in one object',
        ),
    ],
)
def test_a_json_key_given_twice_is_refused_not_read_as_its_last_value(
    gateway: GatewayFactory, content: bytes, detail: str
) -> None:
    """A proxy or log pipeline in front may read the first value where the framework reads
    the last: the key that was checked or recorded would not be the one acted on."""
    with gateway() as gw:
        response = post_json(gw, "/v1/apikeys", content)
        created = [e for e in gw.events() if e.action == "apikey.create"]
    assert problem(response, 400, "bad_request")["detail"] == detail
    assert len(created) == 1  # the bootstrap key only


def test_a_duplicate_key_in_a_nested_object_is_refused(gateway: GatewayFactory) -> None:
    content = b'{"requests": [{"principal": "a", "principal": "b", "action": "read"}]}'
    with gateway() as gw:
        response = post_json(gw, "/v1/authz/check", content)
    assert problem(response, 400, "bad_request")["detail"] == (
        'the body has the key "principal" more than once in one object'
    )


@pytest.mark.parametrize(
    "query", ["actor=alice&actor=bob", "limit=1&limit=500", "act%6Fr=alice&actor=bob"]
)
def test_a_query_parameter_given_twice_is_refused(gateway: GatewayFactory, query: str) -> None:
    with gateway() as gw:
        response = gw.client.get(f"{API}/v1/audit/events?{query}", headers=gw.auth())
    name = "limit" if "limit" in query else "actor"
    assert problem(response, 400, "bad_request")["detail"] == (
        f"query parameter {name} is given more than once"
    )


def test_a_body_that_is_not_json_is_still_described_by_the_framework(
    gateway: GatewayFactory,
) -> None:
    with gateway() as gw:
        body = problem(post_json(gw, "/v1/users", b'{"name": '), 400, "invalid_body")
    assert body["detail"].startswith("the body is not valid JSON (line 1, column 10)")


@pytest.mark.parametrize(
    ("method", "path", "body", "detail"),
    [
        (
            "PATCH",
            "/v1/users/admin@example.com",
            {"disabld": True},
            "disabld: is not a known field",
        ),
        ("POST", "/v1/apikeys", {"name": "ci", "scopes": ["admin"], "expiry": "1d"}, None),
        ("PATCH", "/v1/tenants/default", {"displayname": "x"}, "displayname: is not a known field"),
    ],
    ids=["typo-in-disabled", "expiry-for-expires", "case-of-displayName"],
)
def test_a_misspelt_field_is_refused_not_ignored(
    gateway: GatewayFactory, method: str, path: str, body: dict[str, Any], detail: str | None
) -> None:
    """``disabld: true`` answered 200 and changed nothing: the operator believed a user
    disabled who was not, or a key short-lived that never expires."""
    with gateway() as gw:
        before = [e.action for e in gw.events()]
        response = gw.client.request(method, f"{API}{path}", json=body, headers=gw.auth())
        after = [e.action for e in gw.events()]
    answer = problem(response, 400, "bad_request")
    assert answer["detail"] == (detail or "expiry: is not a known field")
    assert not any(a.endswith((".update", ".create")) for a in after[len(before) :])


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "off", None])
def test_a_flag_is_a_json_boolean_only(gateway: GatewayFactory, value: Any) -> None:
    with gateway() as gw:
        response = gw.client.patch(
            f"{API}/v1/users/admin@example.com", json={"disabled": value}, headers=gw.auth()
        )
        shown = gw.client.get(f"{API}/v1/users/admin@example.com", headers=gw.auth()).json()
    if value is None:  # an optional field left out, as if not sent
        assert response.status_code == 200
    else:
        assert problem(response, 400, "bad_request")["detail"] == "disabled: must be true or false"
    assert shown["disabled"] is False
