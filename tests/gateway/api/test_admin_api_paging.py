"""Lists of principals, groups, API keys, bindings and resource rules come in pages: bounded
answers, a Link to the next page, nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin

import pytest

from bastion.core.model import PrincipalKind, SubjectType
from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.problem_checks import problem

API = "/_bastion/api/v1"
USERS = f"{API}/users"
ACTOR = {"type": "operator", "id": "tester"}


def add_users(gw: Gateway, *names: str) -> None:
    for name in names:
        gw.services.identity.directory.create(
            tenant_name="default", kind=PrincipalKind.USER, name=name, actor=ACTOR
        )


def next_url(link: str, base: str) -> str:
    target, _, relation = link.partition(";")
    assert relation.strip() == 'rel="next"'
    return urljoin(base, target.strip().removeprefix("<").removesuffix(">"))


def test_following_next_links_gives_every_user_once_in_name_order(
    gateway: GatewayFactory,
) -> None:
    with gateway() as gw:
        add_users(gw, "dora@example.com", "bob@example.com", "éva@example.com", "carl@example.com")
        url, names, pages = USERS + "?limit=2", [], 0
        while url:
            answer = gw.client.get(url, headers=gw.auth())
            assert answer.status_code == 200
            assert len(answer.json()) <= 2
            names += [user["name"] for user in answer.json()]
            pages += 1
            link = answer.headers.get("link")
            url = next_url(link, url) if link else ""
    assert names == [
        "admin@example.com",
        "bob@example.com",
        "carl@example.com",
        "dora@example.com",
        "éva@example.com",
    ]
    assert pages == 3


def every_page(gw: Gateway, url: str) -> list[list[str]]:
    """The names on each page, following the Link header to the end."""
    pages = []
    while url:
        answer = gw.client.get(url, headers=gw.auth())
        assert answer.status_code == 200
        pages.append([item["name"] for item in answer.json()])
        link = answer.headers.get("link")
        url = next_url(link, url) if link else ""
    return pages


def add_groups(gw: Gateway, *names: str) -> None:
    for name in names:
        gw.services.identity.groups.create(tenant_name="default", name=name, actor=ACTOR)


def add_keys(gw: Gateway, *names: str) -> None:
    for name in names:
        gw.services.api_keys.create(
            tenant_name="default",
            owner_name="admin@example.com",
            name=name,
            scopes=["patterns:read"],
            expires_at=None,
            actor=ACTOR,
        )


@pytest.mark.parametrize(
    ("path", "add"), [("groups", add_groups), ("apikeys", add_keys)], ids=["groups", "apikeys"]
)
def test_groups_and_keys_come_in_pages_by_name(
    gateway: GatewayFactory, path: str, add: Callable[..., None]
) -> None:
    with gateway() as gw:
        add(gw, "ops", "backup", "deploy", "ci", "élan")
        whole = gw.client.get(f"{API}/{path}", headers=gw.auth())
        pages = every_page(gw, f"{API}/{path}?limit=2")
        after = gw.client.get(f"{API}/{path}?after=deploy&limit=1", headers=gw.auth())
    names = [item["name"] for item in whole.json()]
    assert "link" not in whole.headers
    assert set(names) >= {"ops", "backup", "deploy", "ci", "élan"}
    assert names == sorted(names)  # code-point order: accented letters last
    assert [name for page in pages for name in page] == names
    assert all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    assert [item["name"] for item in after.json()] == [names[names.index("deploy") + 1]]
    assert 'rel="next"' in after.headers["link"]


def test_a_page_of_groups_shows_each_groups_members(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        add_users(gw, "bob@example.com", "carl@example.com")
        add_groups(gw, "dev", "ops", "sre")
        groups = gw.services.identity.groups
        for group, member in (("ops", "carl@example.com"), ("ops", "bob@example.com")):
            groups.add_member(tenant_name="default", name=group, member=member, actor=ACTOR)
        groups.add_member(tenant_name="default", name="sre", member="carl@example.com", actor=ACTOR)
        page = gw.client.get(f"{API}/groups?after=dev&limit=2", headers=gw.auth())
    assert [(g["name"], [m["name"] for m in g["members"]]) for g in page.json()] == [
        ("ops", ["bob@example.com", "carl@example.com"]),
        ("sre", ["carl@example.com"]),
    ]


def test_bindings_come_in_pages_by_subject_and_role(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        add_users(gw, "bob@example.com", "carl@example.com")
        add_groups(gw, "ops")
        admin = gw.services.authz.admin
        for kind, name, role in (
            (SubjectType.USER, "bob@example.com", "viewer"),
            (SubjectType.USER, "carl@example.com", "operator"),
            (SubjectType.USER, "bob@example.com", "operator"),
            (SubjectType.GROUP, "ops", "viewer"),
        ):
            admin.bind(
                tenant_name="default",
                subject_type=kind,
                subject_name=name,
                role=role,
                expires_at=None,
                actor=ACTOR,
            )
        whole = gw.client.get(f"{API}/bindings", headers=gw.auth()).json()
        url, seen = f"{API}/bindings?limit=2", []
        while url:
            answer = gw.client.get(url, headers=gw.auth())
            seen += answer.json()
            link = answer.headers.get("link")
            url = next_url(link, url) if link else ""
        wrong = gw.client.get(f"{API}/bindings?after=user/bob", headers=gw.auth())
    keys = [(b["subject"]["type"], b["subject"]["name"], b["role"]) for b in whole]
    assert keys == [
        ("group", "ops", "viewer"),
        ("user", "admin@example.com", "admin"),
        ("user", "bob@example.com", "operator"),
        ("user", "bob@example.com", "viewer"),
        ("user", "carl@example.com", "operator"),
    ]
    assert seen == whole
    assert problem(wrong, 400, "bad_request")["detail"] == (
        "query parameter after must be TYPE/NAME/ROLE"
    )


def test_resource_rules_come_in_pages_by_resource(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        for resource in ("patterns/b", "patterns/é", "agents/z", "patterns/a/x", "patterns/B"):
            gw.services.authz.admin.add_rule(
                tenant_name="default",
                resource=resource,
                allowed_users=[],
                allowed_roles=["admin"],
                actions=[],
                actor=ACTOR,
            )
        whole = gw.client.get(f"{API}/resource-rules", headers=gw.auth()).json()
        url, seen = f"{API}/resource-rules?limit=2", []
        while url:
            answer = gw.client.get(url, headers=gw.auth())
            assert len(answer.json()) <= 2
            seen += answer.json()
            link = answer.headers.get("link")
            url = next_url(link, url) if link else ""
        wrong = gw.client.get(f"{API}/resource-rules?after=patterns", headers=gw.auth())
    assert [r["resource"] for r in whole] == [
        "agents/z",
        "patterns/B",
        "patterns/a/x",
        "patterns/b",
        "patterns/é",
    ]
    assert seen == whole
    assert problem(wrong, 400, "bad_request")["detail"] == "query parameter after must be TYPE/ID"


def test_a_page_that_ends_the_list_has_no_link(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        add_users(gw, "bob@example.com")
        whole = gw.client.get(USERS, headers=gw.auth())
        after = gw.client.get(USERS + "?after=admin%40example.com", headers=gw.auth())
    assert [u["name"] for u in whole.json()] == ["admin@example.com", "bob@example.com"]
    assert "link" not in whole.headers
    assert [u["name"] for u in after.json()] == ["bob@example.com"]


def test_a_page_shows_each_users_groups(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        add_users(gw, "bob@example.com", "carl@example.com")
        groups = gw.services.identity.groups
        groups.create(tenant_name="default", name="ops", actor=ACTOR)
        groups.add_member(tenant_name="default", name="ops", member="carl@example.com", actor=ACTOR)
        page = gw.client.get(USERS + "?after=bob%40example.com&limit=1", headers=gw.auth())
    assert [(u["name"], u["groups"]) for u in page.json()] == [("carl@example.com", ["ops"])]


@pytest.mark.parametrize(
    "path",
    ["users", "serviceaccounts", "agents", "groups", "apikeys", "bindings", "resource-rules"],
)
def test_a_limit_outside_1_to_1000_or_an_empty_cursor_is_400(
    gateway: GatewayFactory, path: str
) -> None:
    with gateway() as gw:
        for limit in ("0", "1001", "many"):
            answer = gw.client.get(f"{API}/{path}?limit={limit}", headers=gw.auth())
            assert problem(answer, 400, "bad_request")["detail"].startswith("query parameter limit")
        answer = gw.client.get(f"{API}/{path}?after=", headers=gw.auth())
        assert problem(answer, 400, "bad_request")["detail"].startswith("query parameter after")
