"""Lists of principals come in pages: bounded answers, a Link to the next page, nothing lost."""

from __future__ import annotations

from urllib.parse import urljoin

from bastion.core.model import PrincipalKind
from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.problem_checks import problem

USERS = "/_bastion/api/v1/users"
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


def test_a_limit_outside_1_to_1000_is_400(gateway: GatewayFactory) -> None:
    with gateway() as gw:
        for limit in ("0", "1001", "many"):
            answer = gw.client.get(f"{USERS}?limit={limit}", headers=gw.auth())
            assert problem(answer, 400, "bad_request")["detail"].startswith("query parameter limit")
