"""`bastion user list` against a remote bastion reads every page of the admin API's list."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.cli import remote as remote_module
from bastion.cli.remote import Endpoint, RemoteClient
from bastion.cli.role_cmd import binding_cursor


class PagedApi:
    """The admin API's paging over ``names``: at most ``limit`` items named after ``after``."""

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        self.asked: list[dict[str, object]] = []

    def get(self, path: str, **query: Any) -> list[dict[str, str]]:
        self.asked.append(query)
        after, limit = query.get("after"), int(query["limit"])
        rest = [n for n in self.names if after is None or n > after]
        return [{"name": n} for n in rest[:limit]]


@pytest.mark.parametrize("count", [0, 3, 4, 9])
def test_get_all_follows_pages_until_a_short_one(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(remote_module, "MAX_PAGE", 3)
    api = PagedApi([f"user{i}@example.com" for i in range(count)])
    client = RemoteClient(Endpoint("http://127.0.0.1:1"), tenant="default", username="admin")
    monkeypatch.setattr(client, "get", api.get)
    assert [item["name"] for item in client.get_all("/users")] == api.names
    assert len(api.asked) == count // 3 + 1
    assert api.asked[0] == {"limit": 3, "after": None}


def test_get_all_pages_after_the_cursor_a_list_names_its_items_by(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bindings have no name: their place is TYPE/NAME/ROLE (`role_cmd.binding_cursor`)."""
    monkeypatch.setattr(remote_module, "MAX_PAGE", 2)
    keys = ["group/ops/viewer", "user/a/admin", "user/b/viewer"]
    api = PagedApi(keys)
    client = RemoteClient(Endpoint("http://127.0.0.1:1"), tenant="default", username="admin")

    def bindings(path: str, **query: Any) -> list[dict[str, Any]]:
        kind_name_role = [item["name"].split("/") for item in api.get(path, **query)]
        return [{"subject": {"type": t, "name": n}, "role": r} for t, n, r in kind_name_role]

    monkeypatch.setattr(client, "get", bindings)
    found = client.get_all("/bindings", cursor=binding_cursor)
    assert [binding_cursor(b) for b in found] == keys
    assert [q["after"] for q in api.asked] == [None, "user/a/admin"]
