"""Header hygiene: identity spellings stripped, hop-by-hop dropped, XFF only from trusted peers."""

from __future__ import annotations

import pytest

from bastion.gateway.headers import (
    client_address,
    is_identity_header,
    parse_networks,
    strip_for_upstream,
)

TRUSTED = parse_networks(["10.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(
    "name",
    [
        b"x-bastion-principal",
        b"X-Bastion-Principal",
        b"x_bastion_principal",
        b"X_BASTION_TENANT",
        b"x-bastion-principal ",
        b"x-forwarded-user",
        b"remote-user",
        b"Remote_User",
        b"x-auth-request-email",
        b"x-original-uri",
        b"x-real-ip",
        b"forwarded",
    ],
)
def test_identity_header_spellings_detected(name: bytes) -> None:
    assert is_identity_header(name)


def test_strip_for_upstream_drops_identity_hop_by_hop_and_connection_listed() -> None:
    headers = [
        (b"host", b"example"),
        (b"x-bastion-roles", b"admin"),
        (b"x_bastion_roles", b"admin"),
        (b"connection", b"keep-alive, x-secret-hop"),
        (b"x-secret-hop", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"accept", b"application/json"),
    ]
    assert strip_for_upstream(headers) == [(b"accept", b"application/json")]


def test_client_address_ignores_xff_from_untrusted_peer() -> None:
    assert client_address("203.0.113.9", [(b"x-forwarded-for", b"1.2.3.4")], TRUSTED) == (
        "203.0.113.9"
    )


def test_client_address_from_trusted_proxy_chain() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7, 10.0.0.2")]
    assert client_address("10.0.0.1", headers, TRUSTED) == "198.51.100.7"


def test_malformed_xff_from_trusted_proxy_means_unknown_client() -> None:
    assert client_address("10.0.0.1", [(b"x-forwarded-for", b"not-an-ip")], TRUSTED) is None


def test_underscore_xff_spelling_is_not_trusted() -> None:
    headers = [(b"x_forwarded_for", b"6.6.6.6")]
    assert client_address("10.0.0.1", headers, TRUSTED) == "10.0.0.1"


def test_no_trusted_proxies_by_default() -> None:
    assert client_address("10.0.0.1", [(b"x-forwarded-for", b"6.6.6.6")], ()) == "10.0.0.1"
