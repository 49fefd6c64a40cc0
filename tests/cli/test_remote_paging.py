"""`bastion user list` against a remote bastion reads every page of the admin API's list."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.cli import remote as remote_module
from bastion.cli.remote import Endpoint, RemoteClient


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
