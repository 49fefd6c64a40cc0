"""IP allowlists: IPv4 and IPv6 ranges, and an unknown client never matches."""

from __future__ import annotations

import pytest

from bastion.core.netrules import Allowlist

ALLOW = Allowlist.of(["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"])


@pytest.mark.parametrize("client", ["10.255.0.1", "192.0.2.7", "2001:db8::1", "::ffff:10.1.1.1"])
def test_addresses_in_ranges_are_permitted(client: str) -> None:
    assert ALLOW.permits(client)


@pytest.mark.parametrize(
    "client", ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::1", None, "", "not-an-ip", "10.0.0.1:80"]
)
def test_other_or_unknown_addresses_are_refused(client: str | None) -> None:
    assert not ALLOW.permits(client)


def test_empty_allowlist_is_no_rule() -> None:
    assert Allowlist().permits(None)
    assert not Allowlist().active
